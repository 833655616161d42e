#!/bin/sh
# The light child of the start-latency benchmark: the same report as child-start.mjs, from a
# POSIX shell and date(1), to show how much of the child start is node's own boot.
t=$(date +%s%N)
echo '{"event":"result","metrics":{"startedAt":'"$((t / 1000000)).$(printf '%06d' $((t % 1000000)))"'}}'
