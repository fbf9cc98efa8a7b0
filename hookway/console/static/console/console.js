// Hookway console: the events page's "Live" switch and the "Copy" buttons.
// No build step: plain JavaScript, loaded after the page (defer).
(function () {
  "use strict";

  // --- Live: new events from the operator API's stream (/api/v1/stream, the session's
  // cookie authenticates it). The stream names events; their rows come from the
  // console (/events/rows/?ids=…), rendered like the rest of the table, in batches.
  var live = document.getElementById("live");
  if (live && !live.disabled) {
    var rows = document.getElementById("event-rows");
    var status = document.getElementById("live-status");
    var source = null;
    var wanted = new Set();
    var timer = null;
    var KEEP = 200; // rows kept on the page while live

    var say = function (text) { status.textContent = text; };

    var flush = function () {
      timer = null;
      if (!wanted.size) return;
      var ids = Array.from(wanted).slice(0, 100);
      ids.forEach(function (id) { wanted.delete(id); });
      fetch(live.dataset.rows + "?ids=" + encodeURIComponent(ids.join(",")), {
        credentials: "same-origin",
        headers: { "HX-Request": "true" },
      })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var box = document.createElement("tbody");
          box.innerHTML = html;
          var fresh = Array.from(box.children).reverse(); // oldest first: each goes on top
          fresh.forEach(function (tr) {
            var old = document.getElementById(tr.id);
            if (old) { old.replaceWith(tr); } else { rows.prepend(tr); }
          });
          while (rows.children.length > KEEP) rows.lastElementChild.remove();
          var empty = document.getElementById("no-events");
          if (empty && rows.children.length) empty.remove();
          if (wanted.size) schedule();
        })
        .catch(function () { say("could not load new rows"); });
    };
    var schedule = function () { if (!timer) timer = setTimeout(flush, 300); };

    var start = function () {
      source = new EventSource(live.dataset.stream, { withCredentials: true });
      source.onopen = function () { say("live: new events appear at the top"); };
      source.onerror = function () { say("reconnecting…"); };
      var take = function (message) {
        try {
          var data = JSON.parse(message.data);
          wanted.add(data.id || data.event);
          schedule();
        } catch (e) { /* not ours */ }
      };
      source.addEventListener("event", take);
      source.addEventListener("delivery", function (message) {
        // An outcome: refresh the row if it is on the page.
        try {
          var data = JSON.parse(message.data);
          if (document.getElementById("row-" + data.event)) { wanted.add(data.event); schedule(); }
        } catch (e) { /* not ours */ }
      });
    };
    var stop = function () {
      if (source) source.close();
      source = null;
      say("");
    };
    var remember = function (on) {
      var url = new URL(window.location.href);
      if (on) url.searchParams.set("live", "1"); else url.searchParams.delete("live");
      history.replaceState(null, "", url);
    };
    live.addEventListener("change", function () {
      if (live.checked) start(); else stop();
      remember(live.checked);
    });
    if (new URL(window.location.href).searchParams.get("live") === "1") {
      live.checked = true;
      start();
    }
  }

  // --- Copy buttons: copy the text of the element named by data-copy.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy");
    if (!button) return;
    var target = document.getElementById(button.dataset.copy);
    if (!target) return;
    var done = function (text) {
      button.textContent = text;
      setTimeout(function () { button.textContent = "Copy"; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(target.textContent).then(
        function () { done("Copied"); },
        function () { done("Select and copy"); });
    } else {
      // Plain http on another host: no clipboard API; select the text for Ctrl+C.
      var range = document.createRange();
      range.selectNodeContents(target);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      done("Selected: press Ctrl+C");
    }
  });
})();
