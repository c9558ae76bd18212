// AutoHome's status page: refresh the live parts while the page is visible, and send the
// action buttons' forms without leaving the page. Without JavaScript the page still works:
// the forms post and come back, and a reload shows what changed.
"use strict";

const REFRESH_MS = 3000;
let timer = null;

async function refresh(id, url) {
  const part = document.getElementById(id);
  if (!part) return;
  const answer = await fetch(url, { cache: "no-cache", credentials: "same-origin" });
  if (answer.status === 200) part.innerHTML = await answer.text();
}

async function refreshAll() {
  const live = document.getElementById("live");
  try {
    if (live) await refresh("live", "/live?span=" + encodeURIComponent(live.dataset.span || "24h"));
    await refresh("log", "/log");
  } catch (problem) {
    // AutoHome stopped or the network went: try again at the next turn.
  }
}

function schedule() {
  clearInterval(timer);
  timer = document.hidden ? null : setInterval(refreshAll, REFRESH_MS);
}

document.addEventListener("visibilitychange", () => { schedule(); if (!document.hidden) refreshAll(); });

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!form.classList || !form.classList.contains("action")) return;
  event.preventDefault();
  const flash = document.getElementById("flash");
  try {
    const answer = await fetch(form.action, {
      method: "POST", body: new URLSearchParams(new FormData(form)), credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" },
    });
    const text = (answer.headers.get("Content-Type") || "").startsWith("application/json")
      ? (await answer.json()).message : await answer.text();
    if (flash) flash.textContent = text;
  } catch (problem) {
    if (flash) flash.textContent = "AutoHome did not answer";
  }
  await refreshAll();
  setTimeout(refreshAll, 600);  // a run started now has usually finished by then
});

function showTip(event) {
  const mark = event.target.closest ? event.target.closest(".mark") : null;
  const tip = document.getElementById("tip");
  if (!mark || !tip) return;
  const title = mark.querySelector("title");
  tip.textContent = title ? title.textContent : "";
  const box = mark.getBoundingClientRect();
  tip.style.left = Math.max(4, box.left) + "px";
  tip.style.top = (box.bottom + 6) + "px";
  tip.hidden = false;
}

function hideTip() {
  const tip = document.getElementById("tip");
  if (tip) tip.hidden = true;
}

document.addEventListener("focusin", showTip);
document.addEventListener("focusout", hideTip);
schedule();
