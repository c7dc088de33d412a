// Every console page: when a caller starts waiting for a person (a "hitl.request" that is waiting),
// a sound and a desktop notification; the header's badge (and the tab's title) counts the callers
// waiting. Over ws/console/, whose snapshot is the count now; like every console socket it answers
// the server's heartbeat pings, so an open page keeps its operator present. Needs console/live.js.
//
// Browsers' rules: the notification permission is asked only from a click (the header's "Enable
// desktop notifications"), and sound plays only once the page had a user gesture (the AudioContext
// is resumed on the first click or key). "Alerts: off" mutes both; the choice is kept in this
// browser (localStorage). The badge counts either way.
(function () {
  "use strict";

  var MUTED = "aipbx.alerts.muted";
  var audio = null;
  var baseTitle = document.title;

  function isMuted() {
    try { return localStorage.getItem(MUTED) === "1"; } catch (e) { return false; }
  }

  function setMuted(on) {
    try { localStorage.setItem(MUTED, on ? "1" : "0"); } catch (e) { /* private mode: this page only */ }
    render();
  }

  function context() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return null;
    audio = audio || new Ctx();
    return audio;
  }

  // On a user gesture the browser lets the context run; before one it stays suspended (silent).
  function unlock() {
    try {
      var ctx = context();
      if (ctx && ctx.state === "suspended") ctx.resume();
    } catch (e) { /* no audio here: the notification and the badge still tell */ }
  }

  function chime() {
    var ctx = context();
    if (!ctx) return;
    if (ctx.state === "suspended") ctx.resume();
    [[0, 880], [0.18, 1320]].forEach(function (note) {
      var osc = ctx.createOscillator(), gain = ctx.createGain(), at = ctx.currentTime + note[0];
      osc.frequency.value = note[1];
      gain.gain.setValueAtTime(0.2, at);
      gain.gain.exponentialRampToValueAtTime(0.001, at + 0.3);
      osc.connect(gain);
      gain.connect(ctx.destination);
      osc.start(at);
      osc.stop(at + 0.3);
    });
  }

  function notify(req) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    var title = (document.body.dataset.alertTitle || "Caller waiting") + ": " + (req.caller || "?") + " → " + req.callee;
    var n = new Notification(title, {body: req.question, tag: req.request_id});  // one per request, across tabs
    n.onclick = function () { window.focus(); location.href = req.url; };
  }

  function alertFor(req) {
    if (isMuted()) return;
    try { chime(); } catch (e) { /* the notification still tells */ }
    notify(req);
  }

  function setCount(n) {
    var badge = document.getElementById("hitl-nav-count");
    if (badge) { badge.textContent = n; badge.hidden = !n; }
    document.title = (n ? "(" + n + ") " : "") + baseTitle;
  }

  function render() {
    var mute = document.getElementById("alerts-mute");
    if (mute) {
      var off = isMuted();
      mute.setAttribute("aria-pressed", off ? "true" : "false");
      mute.textContent = off ? mute.dataset.off : mute.dataset.on;
    }
    var ask = document.getElementById("alerts-notify");
    if (ask) ask.hidden = !("Notification" in window) || Notification.permission !== "default";
  }

  function onMessage(msg) {
    if (msg.type === "snapshot") setCount(msg.hitl_waiting);
    else if (msg.type === "hitl.count") setCount(msg.waiting);
    else if (msg.type === "hitl.request" && msg.request.status === "waiting") alertFor(msg.request);
  }

  function start() {
    if (document.body.dataset.alerts !== "on") return;
    var mute = document.getElementById("alerts-mute");
    if (mute) mute.addEventListener("click", function () { setMuted(!isMuted()); if (!isMuted()) unlock(); });
    var ask = document.getElementById("alerts-notify");
    if (ask) ask.addEventListener("click", function () {
      var asked = Notification.requestPermission(render);  // from this click: browsers demand a gesture
      if (asked && asked.then) asked.then(render);
    });
    document.addEventListener("pointerdown", unlock, true);
    document.addEventListener("keydown", unlock, true);
    render();
    window.AIPBX.socket("/ws/console/", onMessage, {name: "console", quiet: true});
  }

  window.AIPBX_ALERTS = {setCount: setCount, muted: isMuted};
  start();
})();
