// AAMI web UI: small enhancements only; every page works without this file.
(function () {
  "use strict";

  // Ask before a destructive button submits (buttons with data-confirm).
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var message = button && button.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  });

  // In code textareas, Tab inserts spaces instead of leaving the field (Esc then Tab leaves).
  var escaped = false;
  document.addEventListener("keydown", function (event) {
    var area = event.target;
    if (!(area instanceof HTMLTextAreaElement) || !area.classList.contains("code")) {
      return;
    }
    if (event.key === "Escape") {
      escaped = true;
      return;
    }
    if (event.key !== "Tab" || event.shiftKey || event.ctrlKey || event.altKey || escaped) {
      escaped = false;
      return;
    }
    event.preventDefault();
    var start = area.selectionStart;
    area.setRangeText("  ", start, area.selectionEnd, "end");
    area.dispatchEvent(new Event("input", { bubbles: true }));
  });

  // Live preview of the alert template editor: render as the person types (debounced),
  // through the cookie-authenticated /ui/preview, and show what Prometheus matches now.
  var form = document.querySelector("form[data-preview-form]");
  if (!form) {
    return;
  }
  var panel = document.getElementById("preview");
  var statusEl = document.getElementById("preview-status");
  var noteEl = document.getElementById("preview-note");
  var ruleEl = document.getElementById("preview-rule");
  var matchesEl = document.getElementById("preview-matches");
  var seriesEl = document.getElementById("preview-series");
  var prefix = form.getAttribute("action").split("/alert-templates")[0];
  var timer = null;
  var sequence = 0;

  function show(data) {
    var ok = data.valid && !data.error;
    panel.setAttribute("data-state", ok ? "valid" : "invalid");
    statusEl.className = "status " + (ok ? "ok" : "bad");
    statusEl.textContent = ok ? "Valid (" + data.scope + ")" : "Invalid: " + (data.error || data.detail || "unknown error");
    noteEl.hidden = !data.note;
    noteEl.textContent = data.note || "";
    ruleEl.textContent = data.yaml || "";
    seriesEl.textContent = "";
    var matches = data.matches;
    if (!matches) {
      matchesEl.textContent = "—";
      return;
    }
    if (matches.error) {
      matchesEl.textContent = matches.error;
      return;
    }
    matchesEl.textContent = matches.count + " series would be pending or firing now";
    matches.series.forEach(function (series) {
      var item = document.createElement("li");
      var code = document.createElement("code");
      code.textContent = series.instance || "(no instance)";
      item.appendChild(code);
      item.appendChild(document.createTextNode(" = " + series.value + " "));
      var rest = document.createElement("span");
      rest.className = "muted";
      rest.textContent = series.labels;
      item.appendChild(rest);
      seriesEl.appendChild(item);
    });
  }

  function run() {
    var mine = ++sequence;
    var body = new URLSearchParams(new FormData(form));
    body.delete("action");
    panel.setAttribute("aria-busy", "true");
    fetch(prefix + "/preview", {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        return response.json();
      })
      .then(function (data) {
        if (mine === sequence) {
          show(data);
        }
      })
      .catch(function (error) {
        if (mine === sequence) {
          show({ valid: false, error: "the preview did not answer (" + error + ")" });
        }
      })
      .finally(function () {
        if (mine === sequence) {
          panel.removeAttribute("aria-busy");
        }
      });
  }

  function schedule() {
    window.clearTimeout(timer);
    timer = window.setTimeout(run, 300);
  }

  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);
  if (form.querySelector("[name=query_template]").value.trim()) {
    schedule();
  }
})();
