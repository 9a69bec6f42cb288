/* A branch service's side: BranchKeeper (branch/branches.ts) and its Recoverer. */

/*
 * manager.settle(claim, phase) for a branch: PhaseDriver.run over its one participant, unless
 * done, then RecordLog.finish (the tombstone, claim gone). A finish that loses its
 * compare-and-set is left to whoever changed the record (TransactionManager.settle).
 */
inline bsettle(i, w, ph, me, ok, inb, crashed) {
  if
  :: !w.done ->
     business(i, ph); inb = 1;
     CRASH(crashed);
     inbiz[i] = 0; inb = 0; w.done = 1
  :: else -> skip
  fi;
  CRASH(crashed);
  w.st = (ph == CONFIRM -> CONFIRMED : CANCELLED); w.cown = 0; w.clive = 0;
  cas(bs[i], w, ok);
  working[me] = 0
}

/* The try request: BranchKeeper.open, the compensable try, BranchKeeper.close. */
bit tbusy[2];
proctype TryHandler(byte i) {
  Rec w; bit ok, created, cxc, inb; byte r;
restart:
  /* a crash: the process and what it was running stop at once */
  atomic { tbusy[i] = 0; working[O_BTRY(i)] = 0; if :: inb -> inbiz[i] = 0; inb = 0 :: else -> skip fi };
end_t:
  do
  :: atomic { tryq[i] -> forget(w); created = 0; cxc = 0; r = 0; tbusy[i] = 1; if :: tryq[i] = 0 :: dups < DUP_MAX -> dups++ fi }
     if
     :: losses < LOSS_MAX -> losses++; tbusy[i] = 0; goto end_t    /* the request never arrived */
     :: true -> skip
     fi;
     if
     :: now >= 1 -> r = R_ERR; goto reply                        /* open: after the deadline */
     :: else -> skip
     fi;
     /*
      * TransactionManager.write → RecordLog.create with the first participant: the fence. It
      * carries the try's claim (ActiveTransaction.claim), renewed while the participant's try
      * runs and released by close's write, so no cancel runs while this try may still run.
      */
     atomic {
       if
       :: bs[i].st == NONE ->
          bs[i].st = TRYING; bs[i].ver = 1; bs[i].done = 0;
#ifdef BUG_UNCLAIMED_TRY
          bs[i].cown = 0; bs[i].clive = 0;
#else
          bs[i].cown = O_BTRY(i); bs[i].clive = 1; working[O_BTRY(i)] = 1;
#endif
          copyrec(w, bs[i]); created = 1; cxc = bcx[i]
       :: else -> created = 0
       fi
     }
     if
     :: !created ->
        /* #seenBefore: a try sent twice waits for the first, up to the deadline */
        (bs[i].st != TRYING || now >= 1);
        r = ((bs[i].st == TRIED || bs[i].st == CONFIRMING || bs[i].st == CONFIRMED) -> R_OK : R_ERR);
        goto reply
     :: else -> skip
     fi;
     CRASH(restart);
     /* the business try (join → action.try) */
     atomic {
       assert(!cxc);              /* P3: a try arriving after its cancel is fenced out */
       assert(!bcx[i]);           /* P3: and no try starts (or runs on) once a cancel of the branch ran */
       btry[i] = 1
     }
     CRASH(restart);
     if
     :: now < 1 ->
        /* close: TRIED, with the reply kept for a duplicate; the write ends the try's claim */
        w.st = TRIED; w.cown = 0; w.clive = 0; cas(bs[i], w, ok);
        r = (ok -> R_OK : R_ERR)
     :: true ->
        /* close after a failed try (it threw, or ended past the deadline): cancel at once */
        w.st = CANCELLING; w.cown = O_BTRY(i); w.clive = 1;
        cas(bs[i], w, ok);
        if
        :: ok ->
           working[O_BTRY(i)] = 1; bcx[i] = 1;
           bsettle(i, w, CANCEL, O_BTRY(i), ok, inb, restart)
        :: else -> skip
        fi;
        r = R_ERR
     fi;
reply:
     atomic { tryrep[i] = r; tbusy[i] = 0; working[O_BTRY(i)] = 0; forget(w); r = 0; created = 0; cxc = 0; ok = 0 }
  od
}

/* BranchKeeper.command: the .tcc confirm and cancel of branch i. */
proctype CmdHandler(byte i) {
  Rec w; byte s, ph, r; bit ok, inb;
restart:
  atomic { working[O_BCMD(i)] = 0; serving[i] = 0; if :: inb -> inbiz[i] = 0; inb = 0 :: else -> skip fi };
end_h:
  do
  :: atomic {
       cmdq[i] != 0 ->
       if
       :: cmdq[i] & 1 -> s = 0; ph = CONFIRM
       :: cmdq[i] & 2 -> s = 0; ph = CANCEL
       :: cmdq[i] & 4 -> s = 1; ph = CONFIRM
       :: cmdq[i] & 8 -> s = 1; ph = CANCEL
       fi;
       take(cmdq[i], 1 << (s * 2 + ph)); serving[i] = s + 1
     }
     if
     :: losses < LOSS_MAX -> losses++; serving[i] = 0; goto end_h  /* lost on the way */
     :: true -> skip
     fi;
again:
     copyrec(w, bs[i]);                                            /* log.storage.get */
     if
     :: ph == CANCEL ->
        if
        :: w.st == NONE ->
#ifdef BUG_NO_TOMBSTONE
           bcx[i] = 1; r = R_OK
#else
           /* #tombstone: the empty rollback's CANCELLED record fences a late try out */
           atomic {
             if
             :: bs[i].st == NONE -> bs[i].st = CANCELLED; bs[i].ver = 1; bcx[i] = 1; r = R_OK
             :: else -> r = 0
             fi
           }
           if :: r == 0 -> goto again :: else -> skip fi
#endif
        :: w.st == CANCELLED -> r = R_OK
        :: w.st == TRYING || w.st == TRIED || w.st == TRY_FAILED || w.st == CANCELLING -> goto drive
        :: else -> r = R_ERR
        fi
     :: else ->
        if
        :: w.st == CONFIRMED -> r = R_OK
#ifdef BUG_UNCLAIMED_CONFIRM
        :: w.st == CONFIRMING -> goto settle                        /* runs it without the claim */
#endif
        :: w.st == TRIED || w.st == CONFIRMING -> goto drive
        :: else -> r = R_ERR
        fi
     fi;
     goto reply;
drive:
     /* #drive: the CONFIRMING/CANCELLING write carries this driver's claim */
     if
     :: w.clive -> r = R_BUSY; goto reply
     :: else -> skip
     fi;
     w.st = (ph == CONFIRM -> CONFIRMING : CANCELLING); w.cown = O_BCMD(i); w.clive = 1;
     cas(bs[i], w, ok);
     if :: !ok -> goto again :: else -> skip fi;
     working[O_BCMD(i)] = 1;
     if :: ph == CANCEL -> bcx[i] = 1 :: else -> skip fi;
settle:
     bsettle(i, w, ph, O_BCMD(i), ok, inb, restart);
     r = R_OK;
reply:
     atomic { crep[s * 2 + i] = r; serving[i] = 0; forget(w); r = 0; s = 0; ph = 0; ok = 0 }
  od
}

/* Recoverer.#recover on a branch record: the service's poller or BullMQ worker. */
proctype BranchRecovery(byte i) {
  Rec w; byte ph; bit ok, inb;
restart:
  atomic { working[O_BREC(i)] = 0; if :: inb -> inbiz[i] = 0; inb = 0 :: else -> skip fi };
end_b:
  do
  :: atomic {
       /* decide(): due and not claimed by a live driver */
       !bs[i].clive &&
       ((bs[i].st == TRYING && now >= 1) || ((bs[i].st == TRIED || bs[i].st == TRY_FAILED) && now >= 2) ||
        bs[i].st == CONFIRMING || bs[i].st == CANCELLING) ->
       copyrec(w, bs[i])
     }
     if
     :: w.st == TRYING ->
        w.st = TRY_FAILED; cas(bs[i], w, ok); goto next        /* fail-try: no claim */
     :: w.st == TRIED ->
        /* #ask: a signed .tcc query to the parent (OutcomeReporter.answer) */
        if
        :: losses < LOSS_MAX -> losses++; goto next              /* unreachable: a failed attempt */
        :: atomic {
             rs[0].st == CONFIRMING || rs[0].st == CONFIRMED -> ph = CONFIRM
           }
        :: atomic {
             rs[0].st == NONE || rs[0].enl <= i || rs[0].st == CANCELLING || rs[0].st == CANCELLED ->
             ph = CANCEL
           }
        :: rs[0].st == TRYING -> goto next                        /* pending */
        fi;
        if :: bs[i].ver != w.ver -> goto next :: else -> skip fi  /* changed meanwhile: #settled */
     :: w.st == CONFIRMING -> ph = CONFIRM
     :: w.st == TRY_FAILED || w.st == CANCELLING -> ph = CANCEL
     fi;
     /* the attempt's write carries the claim (claims.take) */
     w.st = (ph == CONFIRM -> CONFIRMING : CANCELLING); w.cown = O_BREC(i); w.clive = 1;
     cas(bs[i], w, ok);
     if :: !ok -> goto next :: else -> skip fi;
     working[O_BREC(i)] = 1;
     if :: ph == CANCEL -> bcx[i] = 1 :: else -> skip fi;
     bsettle(i, w, ph, O_BREC(i), ok, inb, restart);
next:
     atomic { forget(w); ph = 0; ok = 0 }
  od
}
