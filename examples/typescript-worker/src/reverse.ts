// The `text.reverse` action: reverses a text, reporting progress as Fanout shows it.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';

/** Params as the catalog's JSON Schema declares them (activities/catalog.toml). */
export interface ReverseParams {
  text: string;
  seconds?: number;
}

export interface ReverseResult {
  reversed: string;
  characters: number;
}

const STEPS = 10;

/**
 * The activity's input is the params JSON itself and its output the result JSON. Progress goes
 * out as heartbeat details `{percent, message}`; the heartbeats are also where a cancelled job's
 * cancellation arrives (`Context.sleep` throws it).
 */
export async function reverseText(input: unknown): Promise<ReverseResult> {
  const { text, seconds = 0 } = checked(input);
  const context = Context.current();
  context.heartbeat({ percent: 0, message: 'starting' });
  if (seconds > 0) {
    for (let step = 1; step <= STEPS; step++) {
      await context.sleep((seconds * 1000) / STEPS);
      context.heartbeat({ percent: (step * 100) / STEPS, message: `step ${step} of ${STEPS}` });
    }
  }
  // By code points, so that a character outside the BMP (an emoji) stays whole.
  const characters = Array.from(text);
  return { reversed: characters.reverse().join(''), characters: characters.length };
}

/**
 * The API checks params against the catalog's schema, but any Temporal client may start a job:
 * params that cannot work fail the action for good, with the attempt (so Fanout shows it).
 */
function checked(input: unknown): ReverseParams {
  const problem = (what: string): ApplicationFailure =>
    ApplicationFailure.create({
      message: `Invalid params for text.reverse: ${what}`,
      type: 'InvalidParams',
      nonRetryable: true,
      details: [{ attempt: Context.current().info.attempt }],
    });
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw problem('params must be an object');
  }
  const { text, seconds } = input as Record<string, unknown>;
  if (typeof text !== 'string') {
    throw problem('text: must be a string');
  }
  if (seconds !== undefined && (typeof seconds !== 'number' || !(seconds >= 0 && seconds <= 60))) {
    throw problem('seconds: must be a number from 0 to 60');
  }
  return { text, seconds };
}
