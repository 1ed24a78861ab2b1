// A Fanout worker in TypeScript: serves the `text.reverse` action type on its pool's task queue.
//
//   TEMPORAL_ADDRESS    Temporal frontend, host:port (default localhost:7233)
//   TEMPORAL_NAMESPACE  namespace (default "default")
//   FANOUT_TASK_QUEUE   the jobs' task queue (default "fanout-jobs", as in Fanout's settings)
//   FANOUT_POOL         the catalog entry's pool (default "node"): serves <queue>-<pool>
//
// Stops cleanly on SIGTERM or SIGINT: polling stops, running actions get the grace time to
// finish, and Temporal retries the rest on another worker.
import { NativeConnection, Worker } from '@temporalio/worker';
import { reverseText } from './reverse';

const address = process.env.TEMPORAL_ADDRESS || 'localhost:7233';
const namespace = process.env.TEMPORAL_NAMESPACE || 'default';
const taskQueue = `${process.env.FANOUT_TASK_QUEUE || 'fanout-jobs'}-${process.env.FANOUT_POOL || 'node'}`;
// As Fanout's FANOUT_HEARTBEAT_THROTTLE_S: the longest gap between heartbeats sent, so progress
// shows live (the SDK's own default waits up to 80% of the heartbeat timeout).
const heartbeatThrottle = Number(process.env.FANOUT_HEARTBEAT_THROTTLE_S || 1) * 1000; // ms

async function main(): Promise<void> {
  const connection = await NativeConnection.connect({ address });
  try {
    const worker = await Worker.create({
      connection,
      namespace,
      taskQueue,
      // The activity's name is the action type.
      activities: { 'text.reverse': reverseText },
      shutdownGraceTime: '10s',
      maxHeartbeatThrottleInterval: heartbeatThrottle,
      defaultHeartbeatThrottleInterval: heartbeatThrottle,
    });
    console.log(`Serving task queue ${taskQueue} on ${address}: text.reverse`);
    // The SDK's runtime shuts every worker down on SIGINT, SIGTERM, SIGQUIT and SIGUSR2;
    // run() returns once running activities are done.
    await worker.run();
  } finally {
    await connection.close();
  }
}

main().then(
  () => {
    console.log('Worker stopped.');
    process.exit(0);
  },
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
