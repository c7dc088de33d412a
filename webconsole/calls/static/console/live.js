// Live console pages: a websocket per page (ws/live/ or ws/calls/<id>/) that first sends the
// current state ("snapshot") and then call events. Text is always set with textContent.
// Every socket answers the server's "presence.ping" with a heartbeat: that keeps the operator
// present (webconsole/calls/presence.py). The server asks, so a background tab's throttled timers
// do not matter.
(function () {
  "use strict";

  // The page's language: console/base.html puts the texts this script writes (and the labels of
  // call codes) in <script id="console-i18n" type="application/json">; English when it is missing.
  var T = (function () {
    var node = document.getElementById("console-i18n");
    try { return node ? JSON.parse(node.textContent) : {}; } catch (e) { return {}; }
  })();
  function t(key, fallback) { return typeof T[key] === "string" ? T[key] : fallback; }
  function label(table, code, fallback) {
    var found = T[table] && T[table][code];
    return found || fallback || code || "";
  }

  // opts.name: the body's data attribute saying the socket's state ("live" by default: the page's
  // own socket; the alerts' socket says "console"); opts.quiet: no "Reconnecting…" on the page.
  function socket(path, onMessage, opts) {
    opts = opts || {};
    var name = opts.name || "live";
    var status = opts.quiet ? null : document.getElementById("live-status");
    var delay = 500;
    function say(text) { if (status) status.textContent = text; }
    function open() {
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      var ws = new WebSocket(scheme + location.host + path);
      ws.onopen = function () { delay = 500; say(""); document.body.dataset[name] = "connected"; };
      ws.onmessage = function (e) {
        var msg = JSON.parse(e.data);
        if (msg.type === "presence.ping") { ws.send(JSON.stringify({type: "heartbeat"})); return; }
        onMessage(msg);
      };
      ws.onclose = function (e) {
        document.body.dataset[name] = "closed";
        if (e.code === 4401) { location.reload(); return; }  // logged out: the page asks to log in
        if (e.code === 4404) { say(t("not_available", "Not available.")); return; }
        say(t("reconnecting", "Reconnecting…"));
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 10000);
      };
    }
    open();
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function seconds(fromIso) {
    if (!fromIso) return "";
    var s = Math.max(0, Math.round((Date.now() - Date.parse(fromIso)) / 1000));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  function stateText(call) {
    var conv = call.conversation_state;
    return label("call_states", call.state, call.state_label) + (conv ? " · " + label("conversation_states", conv) : "");
  }

  function dashboard(opts) {
    var body = document.querySelector("#active-calls tbody");
    var empty = document.getElementById("no-active");
    var count = document.getElementById("active-count");

    function row(call) {
      var tr = el("tr");
      tr.dataset.callId = call.call_id;
      tr.dataset.started = call.started || "";
      var link = el("a", null, call.caller || "?");
      link.href = opts.callUrl.replace("CALLID", encodeURIComponent(call.call_id));
      var first = el("td"); first.appendChild(link); tr.appendChild(first);
      tr.appendChild(el("td", null, call.callee));
      tr.appendChild(el("td", "state", stateText(call)));
      tr.appendChild(el("td", null, call.ai_handled ? label("speakers", "ai", "AI") : (call.state === "answered" ? t("person", "person") : "—")));
      tr.appendChild(el("td", "duration", seconds(call.started)));
      var sure = call.ai_confidence;
      tr.appendChild(el("td", "confidence", sure === null || sure === undefined ? "—" : Math.round(sure * 100) + "%"));
      // the reply as it is spoken (reply.speaking), then as it was heard (turn)
      tr.appendChild(el("td", "reply" + (call.ai_speaking ? " speaking" : ""), call.ai_reply || ""));
      return tr;
    }
    function refresh() {
      var n = body.querySelectorAll("tr").length;
      count.textContent = n;
      empty.hidden = n > 0;
    }
    function upsert(call) {
      var old = body.querySelector('tr[data-call-id="' + CSS.escape(call.call_id) + '"]');
      if (call.state === "ended") { if (old) old.remove(); }
      else if (old) { body.replaceChild(row(call), old); }
      else { body.appendChild(row(call)); }
      refresh();
    }
    socket("/ws/live/", function (msg) {
      if (msg.type === "snapshot") {
        body.textContent = "";
        msg.calls.forEach(function (c) { body.appendChild(row(c)); });
        refresh();
      } else if (msg.type === "call.event") {
        upsert(msg.call);
      } else if (msg.type === "hitl.count") {
        var waiting = document.getElementById("hitl-waiting");
        if (waiting) waiting.textContent = msg.waiting;
      }
    });
    setInterval(function () {
      body.querySelectorAll("tr").forEach(function (tr) {
        tr.querySelector(".duration").textContent = seconds(tr.dataset.started);
      });
    }, 1000);
  }

  function callView(opts) {
    var list = document.getElementById("transcript");
    var interim = document.getElementById("interim");
    var state = document.getElementById("call-state");

    function turnItem(turn) {
      var li = el("li", "turn " + turn.speaker + (turn.interrupted ? " interrupted" : ""));
      li.id = "t" + turn.id;
      li.dataset.t = turn.t;
      var at = el("a", "at", turn.t.toFixed(1) + " s");
      at.href = "#t=" + turn.t;
      li.appendChild(at);
      li.appendChild(document.createTextNode(" "));
      li.appendChild(el("b", "who", label("speakers", turn.speaker)));
      li.appendChild(document.createTextNode(" "));
      li.appendChild(el("span", "text", turn.text));
      if (turn.unspoken) { li.appendChild(document.createTextNode(" ")); li.appendChild(el("s", "unspoken", turn.unspoken)); }
      if (turn.interrupted) li.appendChild(el("span", "badge interrupted", t("interrupted", "interrupted")));
      decorate(li, turn.retrieved, turn.latency_ms);
      return li;
    }
    function decorate(li, retrieved, latency) {
      var old = li.querySelector(".retrieved"); if (old) old.remove();
      if (retrieved && retrieved.length) {
        var ul = el("ul", "retrieved");
        retrieved.forEach(function (r) {
          var item = el("li", r.used ? "used" : "");
          if (r.used) item.title = t("used_passage", "the AI answered from this passage");
          item.appendChild(el("span", "score", Number(r.score).toFixed(2)));
          item.appendChild(document.createTextNode(" " + r.text));
          ul.appendChild(item);
        });
        li.appendChild(ul);
      }
      var oldLat = li.querySelector(".latency"); if (oldLat) oldLat.remove();
      if (latency && latency.first_rtp) li.appendChild(el("span", "latency", answerAfter(latency.first_rtp)));
    }
    function answerAfter(ms) {
      return t("answer_after", "answer after %(ms)s ms").replace("%(ms)s", String(Math.round(ms)));
    }
    function lastCaller() {
      var items = list.querySelectorAll("li.turn.caller");
      return items.length ? items[items.length - 1] : null;
    }
    function add(turn) {
      var none = document.getElementById("no-transcript"); if (none) none.remove();
      if (document.getElementById("t" + turn.id)) return;
      list.appendChild(turnItem(turn));
    }
    socket("/ws/calls/" + encodeURIComponent(opts.callId) + "/", function (msg) {
      if (msg.type === "snapshot") {
        list.textContent = "";
        msg.turns.forEach(add);
        state.textContent = stateText(msg.call);
        // it ended between the page load and the connection (e.g. a call-back that failed at once)
        if (opts.active && msg.call.state === "ended") location.reload();
        return;
      }
      if (msg.type === "call.transcript") { location.reload(); return; }  // written after the call
      if (msg.type !== "call.event") return;
      state.textContent = stateText(msg.call);
      var ev = msg.event;
      if (msg.turn) { add(msg.turn); interim.textContent = ""; }
      else if (ev.type === "transcript" && !ev.data.final) interim.textContent = "… " + label("speakers", ev.data.speaker || "caller") + ": " + ev.data.text;
      else if (ev.type === "reply.speaking") interim.textContent = "… " + label("speakers", "ai") + ": " + ev.data.text;
      else if (ev.type === "retrieval" && lastCaller()) decorate(lastCaller(), ev.data.results, null);
      else if (ev.type === "callback.status" && ev.data.status !== "ended" && ev.data.status !== "failed") { location.reload(); return; }  // a call-back's next step
      else if (ev.type === "transfer.status" && ev.data.status !== "ended") { location.reload(); return; }  // "take this call": ringing, briefing, connected, or why not
      else if (ev.type === "latency" && lastCaller()) {
        var li = lastCaller(); var lat = li.querySelector(".latency"); if (lat) lat.remove();
        if (ev.data.first_rtp) li.appendChild(el("span", "latency", answerAfter(ev.data.first_rtp)));
      }
      if (msg.call.state === "ended" && document.body.dataset.callEnded !== "1") {
        state.textContent = t("ended", "Ended");
        document.body.dataset.callEnded = "1";
        setTimeout(function () { location.reload(); }, 1500);  // recordings and outcome appear
      }
    });
  }

  // A link like /calls/<id>/#t=6.5 (knowledge provenance) opens the recording at that moment and
  // marks the turn spoken then.
  // A transcript line's time is a link to its moment: clicking it plays the recording from there.
  function seekToMoment(opts) {
    var match = /(?:^#|&)t=([0-9.]+)/.exec(location.hash);
    if (!match) return;
    var t = parseFloat(match[1]);
    var turns = document.querySelectorAll("#transcript li.turn");
    var best = null;
    document.querySelectorAll("#transcript li.moment").forEach(function (li) { li.classList.remove("moment"); });
    turns.forEach(function (li) { if (parseFloat(li.dataset.t) <= t + 0.5) best = li; });
    if (best) { best.classList.add("moment"); best.scrollIntoView({block: "center"}); }
    var audio = document.querySelector('audio[data-recording="mixed"]');
    if (!audio) return;
    function go() {
      audio.currentTime = t;
      if (opts && opts.play) audio.play().catch(function () {});  // a browser may refuse to autoplay
    }
    if (audio.readyState >= 1) { go(); return; }
    audio.preload = "metadata";
    audio.addEventListener("loadedmetadata", go, {once: true});
    audio.load();
  }

  window.AIPBX = {socket: socket, dashboard: dashboard, callView: callView, seekToMoment: seekToMoment, el: el, label: label};
})();
