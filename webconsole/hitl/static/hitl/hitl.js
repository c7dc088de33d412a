// Help-request pages: listen on ws/live/ for hitl.request / hitl.update / hitl.count payloads and
// keep the rows and the request's status current without reload. The sound and the desktop
// notification of a new request are console/alerts.js's, on every page. Text is always set with
// textContent. Needs console/live.js.
(function () {
  "use strict";

  // The reconnecting socket and the element helper are console/live.js's (loaded first).
  function socket(onMessage) { window.AIPBX.socket("/ws/live/", onMessage); }
  var el = window.AIPBX.el;
  var label = window.AIPBX.label;  // the page's language (console/live.js)

  function status(req) {
    return label("request_statuses", req.status, req.status_label) + (req.claimed_by ? " · " + req.claimed_by : "");
  }

  function setCount(n) { window.AIPBX_ALERTS.setCount(n); }  // the header's badge (console/alerts.js)

  function queue() {
    var body = document.querySelector("#hitl-open tbody");
    var none = document.getElementById("hitl-none");
    var count = document.getElementById("hitl-open-count");
    function refresh() {
      var n = body.querySelectorAll("tr").length;
      count.textContent = n; none.hidden = n > 0;
    }
    function row(req) {
      var tr = el("tr");
      tr.dataset.requestId = req.request_id;
      tr.appendChild(el("td", null, new Date(req.created).toLocaleTimeString(document.documentElement.lang || undefined, {hour12: false})));
      var link = el("a", null, req.question); link.href = req.url;
      var q = el("td"); q.appendChild(link); tr.appendChild(q);
      tr.appendChild(el("td", null, req.caller));
      tr.appendChild(el("td", null, req.callee));
      tr.appendChild(el("td", null, req.reason ? label("reasons", req.reason, req.reason_label) : ""));
      tr.appendChild(el("td", "status", status(req)));
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
      if (msg.type === "hitl.request" || msg.type === "hitl.update") {
        upsert(msg.request);
      } else if (msg.type === "hitl.count") {
        setCount(msg.waiting);
      }
    });
  }

  function detail(requestId) {
    socket(function (msg) {
      if (msg.type === "hitl.count") { setCount(msg.waiting); return; }
      if ((msg.type !== "hitl.update" && msg.type !== "hitl.request") || msg.request.request_id !== requestId) return;
      var req = msg.request;
      document.getElementById("hitl-status").textContent = status(req);
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
