#!/bin/sh
# A fake training run for the GPU benchmark: sleeps for the job's params.ms milliseconds, read
# from CAELUM_PAYLOAD (data, never arguments). A POSIX shell rather than node, so that 32
# concurrent fake runs do not cost 32 node start-ups on a 2-core machine.
ms=$(printf '%s' "$CAELUM_PAYLOAD" | sed -n 's/.*"ms":\([0-9][0-9]*\).*/\1/p')
[ -n "$ms" ] || ms=50
sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
echo '{"event":"result","metrics":{"sleptMs":'"$ms"'}}'
