#!/bin/sh
# Creates Fanout's namespace and registers the search attributes jobs keep up to date.
# Runs in temporalio/admin-tools once the server is healthy; safe to run again.
set -eu
address="${TEMPORAL_ADDRESS:-temporal:7233}"
namespace="${FANOUT_NAMESPACE:-default}"
cli() { temporal "$@" --address "$address"; }

retry() {  # a new namespace takes a few seconds to reach every part of the server
  tries=0
  until "$@"; do
    tries=$((tries + 1))
    [ "$tries" -lt 60 ] || { echo "gave up on: $*"; return 1; }
    sleep 1
  done
}

retry cli operator cluster health >/dev/null 2>&1
cli operator namespace describe --namespace "$namespace" >/dev/null 2>&1 \
  || cli operator namespace create --namespace "$namespace" --retention 7d
retry cli operator search-attribute list --namespace "$namespace" >/dev/null 2>&1

for attribute in JobStatus=Keyword JobOwner=Keyword JobActionCount=Int JobProgress=Int \
  JobTitle=Text JobLabels=KeywordList; do
  name="${attribute%%=*}"
  type="${attribute#*=}"
  if cli operator search-attribute list --namespace "$namespace" | grep -qw "$name"; then
    echo "search attribute $name exists"
  else
    retry cli operator search-attribute create --namespace "$namespace" \
      --name "$name" --type "$type"
  fi
done
echo "Namespace $namespace is ready for Fanout."
