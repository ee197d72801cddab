// The alerts page: refresh the list every N seconds (the same URL, so the same filters),
// with a visible toggle remembered in this browser. Without this file the page still works.
(function () {
  "use strict";

  var list = document.getElementById("alert-list");
  var toggle = document.getElementById("auto-refresh");
  var control = document.getElementById("auto-refresh-control");
  var statusEl = document.getElementById("auto-refresh-status");
  if (!list || !toggle || !control) {
    return;
  }
  var key = "aami.alerts.autorefresh";
  var seconds = parseInt(list.getAttribute("data-refresh"), 10) || 30;
  var timer = null;

  function stored() {
    try {
      return window.localStorage.getItem(key);
    } catch (e) {
      return null;
    }
  }

  function remember(value) {
    try {
      window.localStorage.setItem(key, value);
    } catch (e) {
      // storage refused (private mode): the toggle still works for this page
    }
  }

  // Someone silencing an alert (a form open or focused) keeps the list as it is.
  function busy() {
    return list.querySelector("details[open]") !== null || list.contains(document.activeElement);
  }

  function schedule() {
    window.clearTimeout(timer);
    timer = null;
    if (toggle.checked) {
      timer = window.setTimeout(refresh, seconds * 1000);
    }
  }

  function refresh() {
    if (busy()) {
      schedule();
      return;
    }
    window
      .fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("the server answered " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("alert-list");
        if (!fresh) {
          throw new Error("log in again");
        }
        if (!busy()) {
          list.replaceChildren.apply(list, Array.prototype.slice.call(fresh.childNodes));
        }
        statusEl.textContent = "updated " + new Date().toLocaleTimeString();
      })
      .catch(function (error) {
        statusEl.textContent = "not refreshed: " + error.message;
      })
      .then(schedule);
  }

  control.hidden = false;
  toggle.checked = stored() !== "off";
  toggle.addEventListener("change", function () {
    remember(toggle.checked ? "on" : "off");
    statusEl.textContent = toggle.checked ? "" : "paused";
    schedule();
  });
  schedule();
})();
