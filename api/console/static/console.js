// Ordinaut console: small enhancements on top of server-rendered pages. Everything works
// without this file; with it, relative times stay fresh, forms ask before destructive
// actions, ids copy with a click and the run list's "select all" works.
(function () {
  "use strict";

  function ago(iso) {
    var seconds = (Date.now() - new Date(iso).getTime()) / 1000;
    var future = seconds < 0;
    seconds = Math.abs(seconds);
    if (seconds < 5) return "just now";
    var units = [[60, "s", 1], [3600, "min", 60], [86400, "h", 3600], [5184000, "d", 86400],
                 [Infinity, "mo", 2592000]];
    for (var i = 0; i < units.length; i++) {
      if (seconds < units[i][0]) {
        var amount = Math.floor(seconds / units[i][2]) + " " + units[i][1];
        return future ? "in " + amount : amount + " ago";
      }
    }
    return "";
  }

  function refreshTimes(root) {
    (root || document).querySelectorAll("time[data-ago]").forEach(function (el) {
      el.textContent = ago(el.getAttribute("datetime"));
    });
  }

  function selectedCount(form) {
    return form.querySelectorAll("input[name=run_id]:checked").length;
  }

  function updateBulk(form) {
    var label = form.querySelector("[data-selected]");
    var all = form.querySelector("input[name=all_matching]");
    var n = selectedCount(form);
    if (label) {
      label.textContent = all && all.checked ? label.getAttribute("data-all")
        : n === 0 ? "Select runs, or every run matching the filter"
        : n + " run" + (n === 1 ? "" : "s") + " selected";
    }
    form.querySelectorAll("button[data-bulk]").forEach(function (button) {
      button.disabled = !(n > 0 || (all && all.checked));
    });
  }

  // A run page follows its run while it executes: the console's run stream (server-sent
  // events, the session cookie authenticates it) says when the run changed, and the page
  // reads its body again (the same HTML the server renders; no client-side templates).
  function followRun() {
    var body = document.querySelector("[data-run-stream]");
    if (!body || !window.EventSource || !window.fetch) return;
    var source = new EventSource(body.getAttribute("data-run-stream"));
    var url = body.getAttribute("data-run-body");
    var reading = false, again = false;
    function reread() {
      if (reading) { again = true; return; }
      reading = true;
      fetch(url, { credentials: "same-origin", headers: { "HX-Request": "true" } })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          var current = document.getElementById("run-body");
          if (html && current) {
            var holder = document.createElement("div");
            holder.innerHTML = html;
            var fresh = holder.querySelector("#run-body");
            if (fresh) {
              // Folded outputs the reader opened stay open.
              var open = {};
              current.querySelectorAll("tr[data-step] details[open]").forEach(function (d) {
                open[d.closest("tr").getAttribute("data-step")] = true;
              });
              fresh.querySelectorAll("tr[data-step]").forEach(function (row) {
                var d = row.querySelector("details");
                if (d && open[row.getAttribute("data-step")]) d.open = true;
              });
              current.replaceWith(fresh);
              refreshTimes(fresh);
            }
          }
        })
        .catch(function () {})
        .then(function () {
          reading = false;
          if (again) { again = false; reread(); }
        });
    }
    source.addEventListener("changed", reread);
    source.addEventListener("ended", function () { source.close(); reread(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    refreshTimes();
    setInterval(refreshTimes, 15000);
    document.querySelectorAll("form[data-bulk-form]").forEach(updateBulk);
    followRun();
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    refreshTimes(event.target);
  });

  document.addEventListener("change", function (event) {
    var target = event.target;
    var form = target.closest && target.closest("form[data-bulk-form]");
    if (!form) return;
    if (target.matches("input[data-select-page]")) {
      form.querySelectorAll("input[name=run_id]").forEach(function (box) {
        box.checked = target.checked;
      });
    }
    if (target.matches("input[name=run_id]") && !target.checked) {
      var page = form.querySelector("input[data-select-page]");
      if (page) page.checked = false;
    }
    updateBulk(form);
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (!button || !navigator.clipboard) return;
    navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () {
      button.classList.add("copied");
      setTimeout(function () { button.classList.remove("copied"); }, 1200);
    });
  });
})();
