// A row's action forms load when its "Actions" is opened (the workbench's rows, the stuck list's
// findings), so a page of many rows carries none of them. Without script the link in the row
// opens the same forms as a page.
"use strict";
document.addEventListener("toggle", function (event) {
  var details = event.target;
  if (!details.matches || !details.matches("details.row-actions") || !details.open) return;
  if (details.dataset.loaded) return;
  details.dataset.loaded = "1";
  fetch(details.dataset.src, {
    credentials: "same-origin",
    headers: { "X-Svcflow-Fragment": "1" },
  })
    .then(function (response) {
      if (!response.ok) throw new Error(response.status + " " + response.statusText);
      return response.text();
    })
    .then(function (html) {
      var holder = document.createElement("div");
      holder.innerHTML = html;
      details.appendChild(holder);
    })
    .catch(function (error) {
      delete details.dataset.loaded;
      var note = document.createElement("p");
      note.className = "error-text";
      note.textContent = String(error);
      details.appendChild(note);
    });
}, true);

// The workbench and the stuck list refresh themselves every minute, unless the supervisor is in the middle of
// something on it: a row's actions open, a field focused or filled, a case ticked.
var REFRESH_MS = 60000;
function busy() {
  if (document.querySelector("details.row-actions[open]")) return true;
  var active = document.activeElement;
  if (active && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName)) return true;
  if (document.querySelector('input[form="bulk"]:checked')) return true;
  var typed = document.querySelectorAll('section.bulk input[type="text"], section.bulk input:not([type])');
  for (var i = 0; i < typed.length; i++) if (typed[i].value) return true;
  return false;
}
if (document.querySelector("table.workbench, table.findings")) {
  setInterval(function () {
    if (!busy()) window.location.reload();
  }, REFRESH_MS);
}
