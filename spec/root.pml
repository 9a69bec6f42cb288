/* The root's service: TransactionManager (transaction/transaction-manager.ts), its Recoverer, an operator. */

/*
 * manager.settle(claim, phase) for the root: PhaseDriver.run sends confirm (in enlistment
 * order) or cancel (in reverse) to each enlisted branch not yet done, then RecordLog.finish.
 * A busy, failed or unanswered branch stops the phase: the progress is written and the claim
 * released (the record stays for recovery).
 */
inline rsettle(w, ph, me, s, k, b, ack, crashed) {
  k = 0;
  do
  :: k < 2 ->
     b = (ph == CONFIRM -> k : 1 - k);
     if
     :: b >= w.enl || (w.done & (1 << b)) -> k++
     :: else ->
        /* RemoteInvoker.invoke: POST .tcc { action, globalId, xid } */
        atomic { crep[s * 2 + b] = 0; cmdq[b] = cmdq[b] | (1 << (s * 2 + ph)) }
        if
        :: crep[s * 2 + b] == R_OK -> crep[s * 2 + b] = 0; w.done = w.done | (1 << b); k++
        :: crep[s * 2 + b] == R_BUSY || crep[s * 2 + b] == R_ERR -> crep[s * 2 + b] = 0; goto failed
        :: crep[s * 2 + b] == 0 && !(cmdq[b] & (1 << (s * 2 + ph))) && serving[b] != s + 1 ->
           goto failed                                           /* lost: commandTimeoutMs */
        :: losses < LOSS_MAX -> losses++; goto failed              /* slow: timed out anyway */
        fi;
        CRASH(crashed)
     fi
  :: else -> break
  od;
  w.st = (ph == CONFIRM -> CONFIRMED : CANCELLED); w.cown = 0; w.clive = 0;
  rsave(w, ack);
  goto stopped;
failed:
  /* the failure write: progress kept, claim released */
  w.cown = 0; w.clive = 0;
  rsave(w, ack);
stopped:
  atomic { working[me] = 0; forget(w); k = 0; b = 0; ack = 0 }
}

/* Sends the try to branch i and waits for its answer (HttpClient with tcc-context). */
inline remote_try(i, w, r) {
  atomic { tryrep[i] = 0; tryq[i] = 1 }
  if
  :: tryrep[i] != 0 -> r = tryrep[i]; tryrep[i] = 0
  :: tryrep[i] == 0 && !tryq[i] && !tbusy[i] -> r = R_ERR         /* lost: RemoteTimeoutError */
  :: losses < LOSS_MAX -> losses++; r = R_ERR                       /* slow: RemoteTimeoutError */
  fi
}

proctype Root() {
  Rec w; byte r, ph, k, b, ack, before;
  /*
   * enlistRemote → write → RecordLog.create: branch 0 is in the log before its try leaves. The
   * write carries the try's claim, renewed only while a participant's try (here: the request)
   * runs, and refreshed by each enlist's write.
   */
  w.st = TRYING; w.enl = 1; w.cown = O_ROOT; w.clive = 1;
  rsave(w, ack);
  if :: ack != ACK_OK -> goto gone :: else -> skip fi;
  working[O_ROOT] = 1;
  CRASH(gone);
  remote_try(0, w, r);
  working[O_ROOT] = 0;
  if :: r != R_OK -> goto abort :: else -> w.tried = 1 fi;
  CRASH(gone);
  /* the second enlist: a save of the whole record, with the claim extended */
  w.enl = 2; w.clive = 1;
  rsave(w, ack);
  if
  :: ack == 0 -> goto gone                     /* taken over (recovery or an operator) */
  :: ack == ACK_LOST || ack == ACK_TIMEOUT -> w.enl = 1; goto abort
  :: else -> skip
  fi;
  working[O_ROOT] = 1;
  CRASH(gone);
  remote_try(1, w, r);
  working[O_ROOT] = 0;
  if :: r != R_OK -> goto abort :: else -> w.tried = 3 fi;
  CRASH(gone);
  /* commit(): past the deadline it cancels */
  if :: now >= 1 -> goto abort :: else -> skip fi;
  before = w.ver;
  w.st = CONFIRMING; w.cown = O_ROOT; w.clive = 1;
  rsave(w, ack);
  if
  :: ack == ACK_OK -> skip
  :: ack == ACK_TIMEOUT ->
#ifdef BUG_CONFIRM_UNACKED
     skip                                      /* confirms on a commit point only the primary has */
#else
     goto gone                                 /* OutcomeUnknownError: recovery finishes it */
#endif
  :: ack == 0 || ack == ACK_LOST ->
     /* #redoLostCommitPoint: rewritten only if the log holds the record as this process left it */
     w.ver = before; w.st = TRYING; w.cown = 0; w.clive = 0;
     atomic {
       if
       :: rs[0].st == TRYING && rs[0].ver == before && now < 1 -> skip
       :: else -> goto gone
       fi
     }
     w.st = CONFIRMING; w.cown = O_ROOT; w.clive = 1;
     rsave(w, ack);
     if :: ack != ACK_OK -> goto gone :: else -> skip fi
  fi;
  working[O_ROOT] = 1;
  ph = CONFIRM;
  goto settle;
abort:
  /* abort → cancel(): CANCELLING with the claim (claims.take) */
  w.st = CANCELLING; w.cown = O_ROOT; w.clive = 1;
  rsave(w, ack);
  if :: ack != ACK_OK -> goto gone :: else -> skip fi;
  working[O_ROOT] = 1;
  ph = CANCEL;
settle:
  CRASH(gone);
  rsettle(w, ph, O_ROOT, 0, k, b, ack, gone);
gone:
  atomic { working[O_ROOT] = 0; forget(w); r = 0; ph = 0; k = 0; b = 0; ack = 0; before = 0 }
}

/* Recoverer.#recover on the root record: startRecovery's poller, the BullMQ worker, tccctl retry. */
proctype RootRecovery() {
  Rec w; byte ph, k, b, ack;
restart:
  working[O_RREC] = 0;
end_rr:
  do
  :: atomic {
       !rs[0].clive &&
       ((rs[0].st == TRYING && now >= 1) || rs[0].st == CONFIRMING || rs[0].st == CANCELLING) ->
       copyrec(w, rs[0])
     }
     ph = (w.st == CONFIRMING -> CONFIRM : CANCEL);
     w.st = (ph == CONFIRM -> CONFIRMING : CANCELLING); w.cown = O_RREC; w.clive = 1;
     rsave(w, ack);
     if :: ack != ACK_OK -> atomic { working[O_RREC] = 0; forget(w); ph = 0; ack = 0 }; goto end_rr :: else -> skip fi;
     CRASH(restart);
     rsettle(w, ph, O_RREC, 1, k, b, ack, restart)
  od
}

/*
 * Operator.decide (tccctl confirm|cancel) on the root record: planDecision refuses what the log
 * contradicts, and a live claim; the decision is written without a claim and driven by recovery.
 */
proctype Operator() {
  Rec w; byte ack;
  atomic { copyrec(w, rs[0]) }
  if
  :: w.st == TRYING && !w.clive ->
     w.st = CANCELLING;
     atomic { if :: rs[0].ver == w.ver -> assert(!cp_acked) :: else -> skip fi }  /* P5, as its write lands */
     rsave(w, ack)
  :: w.st == TRYING && !w.clive && w.enl > 0 && w.tried == (1 << w.enl) - 1 ->
     w.st = CONFIRMING;
     atomic { if :: rs[0].ver == w.ver -> assert(!cx_acked) :: else -> skip fi }  /* P5 */
     rsave(w, ack)
  :: true -> skip                                          /* refused, nothing to do, or never asked */
  fi;
  atomic { forget(w); ack = 0 }
}
