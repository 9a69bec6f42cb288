/*
 * The coarse clock: now 0 = before the root's deadline, 1 = past it, 2 = past it and a branch's
 * grace (recoverAfterMs). A tick also lapses each claim whose owner no longer renews it (it
 * crashed, or stopped without its last write). A live owner's timer renews its claim before
 * it lapses (Claims.watch, every leaseMs/3): the model assumes, as the README does, that no
 * process is frozen for longer than its claim, so renewals need no steps of their own.
 */
byte now;

#define LAPSABLE(r) (r.clive && !working[r.cown])
#define TICKABLE (now < 2 || LAPSABLE(rs[0]) || LAPSABLE(rs[1]) || LAPSABLE(bs[0]) || LAPSABLE(bs[1]))

proctype Clock() {
end_c:
  do
  :: atomic {
       TICKABLE ->
       if :: now < 2 -> now++ :: else -> skip fi;
       if :: LAPSABLE(rs[0]) -> rs[0].clive = 0 :: else -> skip fi;
       if :: LAPSABLE(rs[1]) -> rs[1].clive = 0 :: else -> skip fi;
       if :: LAPSABLE(bs[0]) -> bs[0].clive = 0 :: else -> skip fi;
       if :: LAPSABLE(bs[1]) -> bs[1].clive = 0 :: else -> skip fi
     }
  od
}
