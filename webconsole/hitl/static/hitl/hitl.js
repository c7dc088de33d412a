// Help-request pages: listen on ws/live/ for hitl.request / hitl.update / hitl.count payloads,
// beep (WebAudio) and show a browser notification for a new request, add its row without reload.
// Text is always set with textContent. Needs console/live.js.
(function () {
  "use strict";

  // The reconnecting socket and the element helper are console/live.js's (loaded first).
  function socket(onMessage) { window.AIPBX.socket("/ws/live/", onMessage); }
  var el = window.AIPBX.el;

  var audio = null;
  function beep() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      var osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.2, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.4);
      osc.connect(gain); gain.connect(audio.destination);
      osc.start(); osc.stop(audio.currentTime + 0.4);
    } catch (e) { /* no audio: the row and the notification still show */ }
  }

  function notify(req) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    var n = new Notification("Caller waiting: " + (req.caller || "?") + " → " + req.callee, {body: req.question, tag: req.request_id});
    n.onclick = function () { window.focus(); location.href = req.url; };
  }

  function offerNotifications() {
    var button = document.getElementById("hitl-notify");
    if (!button || !("Notification" in window) || Notification.permission !== "default") return;
    button.hidden = false;
    button.onclick = function () { Notification.requestPermission().then(function () { button.hidden = true; }); };
  }

  function setCount(n) {
    var badge = document.getElementById("hitl-nav-count");
    if (badge) { badge.textContent = n; badge.hidden = !n; }
  }

  function queue() {
    var body = document.querySelector("#hitl-open tbody");
    var none = document.getElementById("hitl-none");
    var count = document.getElementById("hitl-open-count");
    offerNotifications();
    function refresh() {
      var n = body.querySelectorAll("tr").length;
      count.textContent = n; none.hidden = n > 0;
    }
    function row(req) {
      var tr = el("tr");
      tr.dataset.requestId = req.request_id;
      tr.appendChild(el("td", null, new Date(req.created).toLocaleTimeString()));
      var link = el("a", null, req.question); link.href = req.url;
      var q = el("td"); q.appendChild(link); tr.appendChild(q);
      tr.appendChild(el("td", null, req.caller));
      tr.appendChild(el("td", null, req.callee));
      tr.appendChild(el("td", null, req.reason_label));
      tr.appendChild(el("td", "status", req.status_label + (req.claimed_by ? " · " + req.claimed_by : "")));
      return tr;
    }
    function upsert(req) {
      var old = body.querySelector('tr[data-request-id="' + CSS.escape(req.request_id) + '"]');
      var open = req.status === "waiting" || req.status === "claimed";
      if (!open) { if (old) old.remove(); }
      else if (old) { body.replaceChild(row(req), old); }
      else { body.appendChild(row(req)); }
      refresh();
    }
    socket(function (msg) {
      if (msg.type === "hitl.request") {
        upsert(msg.request);
        if (msg.request.status === "waiting") { beep(); notify(msg.request); }
      } else if (msg.type === "hitl.update") {
        upsert(msg.request);
      } else if (msg.type === "hitl.count") {
        setCount(msg.waiting);
      }
    });
  }

  function detail(requestId) {
    socket(function (msg) {
      if (msg.type === "hitl.count") { setCount(msg.waiting); return; }
      if ((msg.type !== "hitl.update" && msg.type !== "hitl.request") || msg.request.request_id !== requestId) {
        if (msg.type === "hitl.request" && msg.request.status === "waiting") beep();
        return;
      }
      var req = msg.request;
      document.getElementById("hitl-status").textContent = req.status_label + (req.claimed_by ? " · " + req.claimed_by : "");
      if (req.status === "cancelled") {
        document.getElementById("hitl-gone").hidden = false;
      }
      if (req.status !== "waiting" && req.status !== "claimed") {
        var forms = document.getElementById("hitl-forms");
        if (forms) forms.hidden = true;
      }
    });
  }

  window.AIPBX_HITL = {queue: queue, detail: detail};
})();
