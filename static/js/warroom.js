/* Warroom page behaviour: local times, the T-clock, live-push bookkeeping, and
 * showing each viewer the controls they may use (the server checks again). */
(function () {
  "use strict";

  // The viewer's zone, for pages rendered by the server (see UserTimezoneMiddleware).
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone) document.cookie = "warroom_tz=" + encodeURIComponent(zone) + ";path=/;max-age=31536000;samesite=lax";
  } catch (e) { /* old browser: UTC it is */ }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function localise(root) {
    // Say which zone the times are in: the browser's (times in pushed fragments are localised here).
    var viewerZone = "";
    try { viewerZone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { /* UTC */ }
    if (viewerZone) (root || document).querySelectorAll(".viewer-zone").forEach(function (el) { el.textContent = viewerZone; });
    (root || document).querySelectorAll("time[data-local]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      var opts = el.dataset.local === "time"
        ? { hour: "2-digit", minute: "2-digit" }
        : { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short" };
      var local = when.toLocaleString(undefined, opts);
      if (el.dataset.local === "both" && when.getTimezoneOffset() !== 0) {
        local += " (" + pad(when.getUTCHours()) + ":" + pad(when.getUTCMinutes()) + " UTC)";
      }
      el.textContent = local;
      el.title = when.toISOString().replace(".000Z", "Z").replace("T", " ") + " (UTC)";
    });
  }

  function tLabel(ms) {
    var sign = ms >= 0 ? "+" : "-";
    var s = Math.floor(Math.abs(ms) / 1000);
    return "T" + sign + pad(Math.floor(s / 3600)) + ":" + pad(Math.floor(s % 3600 / 60)) + ":" + pad(s % 60);
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-t0]").forEach(function (el) {
      var t0 = Date.parse(el.dataset.t0);
      if (!isNaN(t0)) el.textContent = tLabel(now - t0);
    });
    document.querySelectorAll(".step[data-planned-end]").forEach(function (step) {
      var end = Date.parse(step.dataset.plannedEnd);
      var late = !isNaN(end) && now > end && !step.classList.contains("is-done");
      step.classList.toggle("is-late", late);
      var flag = step.querySelector(".late-flag");
      if (flag) flag.hidden = !late;
    });
  }

  // --- who may use which control ---------------------------------------------------
  function viewer() {
    var b = document.body.dataset;
    return {
      id: b.viewerId || "",
      lead: b.viewerLead === "1",
      roles: (b.viewerRoles || "").trim().split(/\s+/).filter(Boolean),
    };
  }

  function applyAccess(root) {
    if (!document.body.classList.contains("warroom")) return;
    var v = viewer();
    // A finished deployment is read-only for everybody (the header says so; it may have finished live).
    var finished = !!document.querySelector("#wr-header[data-finished]");
    document.body.classList.toggle("is-lead", v.lead);
    (root || document).querySelectorAll(".step").forEach(function (step) {
      var role = step.dataset.role;
      var mayAct = v.lead || (role ? v.roles.indexOf(role) >= 0 : v.roles.length > 0);
      step.classList.toggle("read-only", !mayAct);
      step.querySelectorAll(".item").forEach(function (item) {
        var doneBy = item.dataset.doneBy;
        var mayUndo = v.lead || !doneBy || doneBy === v.id;
        item.querySelectorAll(".act").forEach(function (ctl) {
          var isUndo = ctl.type === "checkbox" && ctl.checked;
          ctl.disabled = finished || !mayAct || (isUndo && !mayUndo);
        });
      });
    });
    applyApprovalAccess(v);
  }

  function applyApprovalAccess(v) {
    document.querySelectorAll(".gate-panel").forEach(function (gate) {
      var voters = (gate.dataset.voterRoles || "").trim().split(/\s+/).filter(Boolean);
      var mayVote = voters.some(function (r) { return v.roles.indexOf(r) >= 0; });
      gate.querySelectorAll(".vote-act").forEach(function (b) { b.hidden = !mayVote; });
      var mine = gate.querySelector('.vote[data-voter="' + v.id + '"]');
      gate.classList.toggle("voted", !!mine && !mine.classList.contains("stale"));
    });
    document.querySelectorAll(".rollout-panel").forEach(function (panel) {
      var role = panel.dataset.role;
      var mayOperate = v.lead || (role && v.roles.indexOf(role) >= 0);
      panel.querySelectorAll(".act").forEach(function (b) { b.hidden = !mayOperate; });
    });
    document.querySelectorAll(".approvals li[data-role]").forEach(function (li) {
      var role = li.dataset.role;
      var mayGive = role ? v.roles.indexOf(role) >= 0 : v.lead;
      li.querySelectorAll(".approve-act").forEach(function (b) {
        var isUndo = b.classList.contains("undo-act");
        b.hidden = isUndo ? !(v.lead || li.dataset.doneBy === v.id) : !mayGive;
      });
    });
  }

  // --- toasts ----------------------------------------------------------------------
  function toast(message) {
    var box = document.getElementById("toast");
    if (!box || !message) return;
    box.textContent = message;
    box.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { box.hidden = true; }, 6000);
  }
  document.addEventListener("warroom:toast", function (e) { toast(e.detail && e.detail.value); });
  document.addEventListener("htmx:responseError", function (e) {
    if (!e.detail.xhr.getResponseHeader("HX-Trigger")) toast(e.detail.xhr.responseText || "Request failed");
    refreshBoard(); // a refused click may have changed a control locally: show the truth again
  });
  // Without a live connection, a saved change would only show at the next poll: fetch now.
  document.addEventListener("htmx:afterRequest", function (e) {
    if (e.detail.successful && !live.open && document.getElementById("board")) refreshBoard();
  });
  document.addEventListener("htmx:sendError", function () { toast("Warroom cannot be reached: your change was not saved."); });

  // --- live updates: sequence numbers, gaps, reconnects, polling ----------------------
  var live = { seq: 0, epoch: "", open: false, everOpened: false, pollTimer: null, refreshing: false,
               again: false, refetchTimer: null, lastHeard: 0, stale: false };

  function setConn(text, cls) {
    var el = document.getElementById("conn-state");
    if (el) { el.textContent = text; el.className = "conn " + (cls || ""); }
  }

  function refreshBoard() {
    var board = document.getElementById("board");
    var url = document.body.dataset.boardUrl;
    if (!board || !url) return;
    // A fetch already under way may have left before the change that asks for this one: fetch once more after it.
    if (live.refreshing) { live.again = true; return; }
    live.refreshing = true;
    live.again = false;
    fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        var seq = parseInt(r.headers.get("X-Warroom-Seq") || "0", 10);
        var epoch = r.headers.get("X-Warroom-Epoch") || "";
        return r.text().then(function (html) {
          board.innerHTML = html;
          htmx.process(board);
          if (!epoch) { /* Redis is down: the board came from PostgreSQL, numbers unknown */ }
          else if (epoch !== live.epoch) { live.epoch = epoch; live.seq = seq; }
          // Pushes that came while this board was on its way were swapped into the old one and
          // are now overwritten by a board older than them: fetch once more.
          else if (seq < live.seq) live.again = true;
          else live.seq = seq;
          afterSwap(board);
        });
      })
      .catch(function () { setConn("Offline: retrying…", "bad"); })
      .finally(function () {
        live.refreshing = false;
        if (live.again) { live.again = false; refreshBoard(); }
      });
  }

  // Screens that show a summary of the whole deployment (the TV, the phone view) cannot
  // swap the war room's fragments: they re-fetch their one fragment after a push instead,
  // at most every REFETCH_MS however fast pushes come (log lines stream every 100 ms).
  var REFETCH_MS = 400;
  function followsByRefetch() { return document.body.dataset.follow === "refetch"; }
  function scheduleRefresh() {
    if (live.refetchTimer) return;
    live.refetchTimer = setTimeout(function () { live.refetchTimer = null; refreshBoard(); }, REFETCH_MS);
  }

  function startPolling() {
    if (live.pollTimer) return;
    var every = parseInt(document.body.dataset.pollSeconds || "5", 10) * 1000;
    live.pollTimer = setInterval(refreshBoard, every);
  }
  function stopPolling() { clearInterval(live.pollTimer); live.pollTimer = null; }

  document.addEventListener("htmx:wsOpen", function () {
    live.open = true;
    live.lastHeard = Date.now();
    live.stale = false;
    setConn("Live", "ok");
    stopPolling();
    if (live.everOpened) refreshBoard(); // we may have missed pushes while away
    live.everOpened = true;
  });
  document.addEventListener("htmx:wsClose", function () {
    live.open = false;
    setConn("Reconnecting… (updating every few seconds meanwhile)", "warn");
    startPolling();
  });
  function heard() {
    live.lastHeard = Date.now();
    if (live.stale) { live.stale = false; setConn("Live", "ok"); stopPolling(); }
  }
  // "Live" only while messages really arrive: pushes, or the server's heartbeat that comes
  // through the same channel layer. Silence for 2.5 beats means the path is cut somewhere.
  setInterval(function () {
    var el = document.getElementById("live");
    if (!el || !live.open) return;
    var beat = parseInt(el.dataset.beatSeconds || "10", 10) * 1000;
    var quiet = Date.now() - live.lastHeard;
    if (!live.stale && quiet > 2.5 * beat) {
      live.stale = true;
      setConn("No live updates for " + Math.round(quiet / 1000) + " s: updating every few seconds meanwhile", "warn");
      startPolling();
      refreshBoard();
    }
  }, 1000);
  document.addEventListener("htmx:wsBeforeMessage", function (e) {
    heard();
    var beat = /id="live-beat"[^>]*data-epoch="([^"]*)"[^>]*data-seq="(\d+)"/.exec(e.detail.message);
    if (beat) {
      // A heartbeat says where the numbers are: a new epoch or a number we never saw means a missed push.
      if (beat[1] !== live.epoch || parseInt(beat[2], 10) > live.seq) refreshBoard();
      return;
    }
    var m = /id="live-seq"[^>]*data-epoch="([^"]*)"[^>]*data-seq="(\d+)"/.exec(e.detail.message);
    if (!m) return; // not a board push (e.g. a pong)
    var seq = parseInt(m[2], 10);
    if (m[1] !== live.epoch) {
      // Redis lost its counter (a restart): numbers before mean nothing, fetch the truth.
      live.epoch = m[1]; live.seq = seq; e.preventDefault(); refreshBoard(); return;
    }
    if (seq <= live.seq) { e.preventDefault(); return; } // already reflected by a refresh
    if (followsByRefetch()) { live.seq = seq; e.preventDefault(); scheduleRefresh(); return; }
    var gap = live.seq && seq > live.seq + 1;
    live.seq = seq;
    if (gap) { e.preventDefault(); refreshBoard(); }
  });
  document.addEventListener("htmx:wsAfterMessage", function () {
    var marker = document.getElementById("live-refresh");
    if (marker && marker.dataset.refresh) { marker.dataset.refresh = ""; refreshBoard(); }
    afterSwap(document);
    document.body.dispatchEvent(new CustomEvent("warroom:pushed"));
  });
  document.addEventListener("htmx:oobAfterSwap", function (e) { afterSwap(e.detail.target); });
  document.addEventListener("htmx:afterSettle", function (e) { afterSwap(e.detail.elt); });

  function markPresence() {
    var list = document.getElementById("presence-list");
    var online = list && list.dataset.online ? list.dataset.online.split(" ") : [];
    document.querySelectorAll("#wr-people li[data-user]").forEach(function (li) {
      var here = online.indexOf(li.dataset.user) >= 0;
      li.classList.toggle("online", here);
      var label = li.querySelector(".presence-label");
      if (label) label.textContent = here ? "(online)" : "(offline)";
    });
  }

  // Run logs: keep a bounded tail on screen (the whole log is a download), follow the end.
  var LOG_TAIL_LINES = 500;
  function trimLogs() {
    document.querySelectorAll("pre.run-log").forEach(function (pre) {
      var text = pre.textContent;
      var atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
      var lines = text.split("\n");
      if (lines.length > LOG_TAIL_LINES + 1) pre.textContent = lines.slice(-LOG_TAIL_LINES - 1).join("\n");
      if (atBottom || !pre.dataset.seen) { pre.scrollTop = pre.scrollHeight; pre.dataset.seen = "1"; }
    });
  }

  // The TV replaces its whole fragment after each push; a polite live region outside it
  // says what changed in one sentence, only when it did (no re-reading the whole screen).
  function announce() {
    var region = document.getElementById("tv-announce");
    var source = document.querySelector("[data-announce]");
    if (!region || !source) return;
    var text = source.textContent.trim();
    if (region.dataset.last === undefined) { region.dataset.last = text; return; } // first render: nothing changed yet
    if (text !== region.dataset.last) { region.dataset.last = text; region.textContent = text; }
  }

  function afterSwap(root) {
    announce();
    trimLogs();
    localise(root);
    applyAccess(document);
    markPresence();
    tick();
  }

  document.addEventListener("click", function (e) {
    var btn = e.target.closest && e.target.closest("button.copy");
    if (!btn) return;
    var pre = document.getElementById(btn.dataset.copy);
    if (pre && navigator.clipboard) navigator.clipboard.writeText(pre.innerText).then(function () { toast("Copied"); });
  });

  document.addEventListener("DOMContentLoaded", function () {
    var seqEl = document.getElementById("live-seq");
    if (seqEl) { live.seq = parseInt(seqEl.dataset.seq || "0", 10); live.epoch = seqEl.dataset.epoch || ""; }
    afterSwap(document);
    setInterval(tick, 1000);
    if (document.getElementById("live")) {
      if (!("WebSocket" in window)) { setConn("No live connection: updating every few seconds", "warn"); startPolling(); }
      else setTimeout(function () { if (!live.open) { setConn("No live connection: updating every few seconds", "warn"); startPolling(); } }, 4000);
    }
  });
})();

/* At phone width the war room starts with what waits for the viewer (their votes, approvals,
 * sign-offs and open lines: the phone view's "waiting" part), fetched again after pushes. */
(function () {
  "use strict";
  var PHONE = "(max-width: 700px)";
  var busy = false, again = false, timer = null;
  function loadMine() {
    var box = document.getElementById("wr-mine");
    if (!box || !box.dataset.url || !window.matchMedia(PHONE).matches) return;
    if (busy) { again = true; return; }
    busy = true;
    fetch(box.dataset.url, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); })
      .then(function (html) {
        box.innerHTML = html;
        if (window.htmx) htmx.process(box);
      })
      .catch(function () { /* the war room below still shows everything */ })
      .finally(function () { busy = false; if (again) { again = false; loadMine(); } });
  }
  function soon() { if (!timer) timer = setTimeout(function () { timer = null; loadMine(); }, 400); }
  document.addEventListener("DOMContentLoaded", loadMine);
  document.addEventListener("warroom:pushed", soon, true); // dispatched on body without bubbling: listen while it descends
  document.addEventListener("htmx:afterRequest", function (e) {
    if (e.detail.successful && e.detail.elt && e.detail.elt.closest && e.detail.elt.closest("#wr-mine")) soon();
  });
  if (window.matchMedia) window.matchMedia(PHONE).addEventListener("change", loadMine);
})();

/* A fragment swapped in by htmx keeps the disclosure widgets (<details id=…>) that were
 * open in the part it replaces, so an edit does not fold up the editor being used. */
(function () {
  "use strict";
  var openIds = [];
  document.addEventListener("htmx:beforeSwap", function (e) {
    var target = e.detail.target;
    openIds = target ? Array.prototype.map.call(target.querySelectorAll("details[open][id]"), function (d) { return d.id; }) : [];
  });
  // After settling: htmx has wired the new content by then, so a reopened panel that loads
  // its content on "toggle" does load it.
  document.addEventListener("htmx:afterSettle", function () {
    openIds.forEach(function (id) {
      var details = document.getElementById(id);
      if (details) details.open = true;
    });
    openIds = [];
  });
})();

/* Incidents and communications: role holders (and the lead) raise, update and
 * acknowledge incidents; observers only watch. The server checks again. */
(function () {
  "use strict";
  function markRoles() {
    var b = document.body;
    if (!b || !b.classList.contains("warroom")) return;
    var roles = (b.dataset.viewerRoles || "").trim();
    b.classList.toggle("has-role", roles.length > 0 || b.dataset.viewerLead === "1");
  }
  document.addEventListener("DOMContentLoaded", markRoles);
  // A SEV1 does more than the others: say so on the button before it is pressed.
  document.addEventListener("change", function (e) {
    if (!e.target || e.target.id !== "inc-severity") return;
    var button = e.target.form && e.target.form.querySelector("button[type=submit]");
    if (button) button.textContent = e.target.value === "sev1" ? "Raise SEV1: page on-call and open a rollback vote" : "Raise incident";
  });
})();

/* Behaviour that used to sit in inline handlers (onsubmit, onclick, hx-on), which the
 * Content-Security-Policy refuses: confirmations and resetting a form after it succeeded. */
(function () {
  "use strict";
  // <form data-confirm="…"> and <button data-confirm="…">: ask first; Cancel stops the submit.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var button = e.submitter;
    var question = (button && button.dataset && button.dataset.confirm) || (form.dataset && form.dataset.confirm);
    if (question && !window.confirm(question)) e.preventDefault();
  }, true);
  // <form data-reset-on-success> (htmx): empty it after a successful request;
  // data-reset-on-success="close" also folds the <details> it sits in.
  document.addEventListener("htmx:afterRequest", function (e) {
    var form = e.detail.elt;
    if (!e.detail.successful || !form || !form.hasAttribute || !form.hasAttribute("data-reset-on-success")) return;
    form.reset();
    var details = form.closest("details");
    if (form.getAttribute("data-reset-on-success") === "close" && details) details.open = false;
  });
})();

/* A form marked data-swap-errors (the rollout plan) answers a refused save with itself and
 * its errors next to the fields (400): show that answer in place instead of a toast. */
(function () {
  "use strict";
  document.addEventListener("htmx:beforeSwap", function (e) {
    var elt = e.detail.requestConfig && e.detail.requestConfig.elt;
    if (e.detail.xhr.status === 400 && elt && elt.closest && elt.closest("[data-swap-errors]")) {
      e.detail.shouldSwap = true;
      e.detail.isError = false;
    }
  });
})();
