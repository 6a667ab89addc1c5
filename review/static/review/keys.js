// Keyboard shortcuts for the review queue and the asset page (press ? on either page).
(() => {
  const script = document.currentScript;
  const page = script.dataset.page;
  const help = document.getElementById("shortcuts");
  const picker = document.getElementById("reasons");
  const typing = (el) =>
    el && (el.tagName === "TEXTAREA" || el.tagName === "SELECT" || (el.tagName === "INPUT" && el.type !== "checkbox"));

  // The reason picker: r opens it, a digit chooses and sends, Esc cancels.
  let onReason = null;
  const pickReason = (callback) => { onReason = callback; picker.showModal(); };
  picker.addEventListener("close", () => { onReason = null; });
  picker.addEventListener("keydown", (event) => {
    const items = picker.querySelectorAll("[data-reason]");
    const n = Number.parseInt(event.key, 10);
    if (n >= 1 && n <= items.length && onReason) {
      event.preventDefault();
      const callback = onReason;
      picker.close();
      callback(items[n - 1].dataset.reason);
    }
  });
  picker.querySelectorAll("[data-reason]").forEach((item) =>
    item.addEventListener("click", () => { const callback = onReason; picker.close(); if (callback) callback(item.dataset.reason); }));

  let keys = {};
  if (page === "queue") {
    const tiles = Array.from(document.querySelectorAll(".tile"));
    const bulk = document.getElementById("bulk");
    let current = -1;
    const box = (tile) => tile && tile.querySelector("input[type=checkbox]");
    const selected = () => document.querySelectorAll(".tile input[type=checkbox]:checked").length;
    const showCount = () => {
      const label = document.getElementById("selected-count");
      if (label) label.textContent = `${selected()} selected`;
    };
    document.addEventListener("change", showCount);
    const move = (index) => {
      if (!tiles.length) return;
      current = Math.max(0, Math.min(tiles.length - 1, index));
      tiles.forEach((tile) => tile.classList.remove("current"));
      tiles[current].classList.add("current");
      tiles[current].focus();
      tiles[current].scrollIntoView({ block: "nearest" });
    };
    const decide = (decision, reason) => {
      if (!selected() && box(tiles[current])) box(tiles[current]).checked = true;
      if (!selected() || !bulk) return;
      if (reason) bulk.querySelector("select[name=reason]").value = reason;
      bulk.requestSubmit(document.getElementById(decision === "approve" ? "bulk-approve" : "bulk-reject"));
    };
    const open = () => { if (current >= 0) tiles[current].querySelector("a").click(); };
    keys = {
      j: () => move(current + 1),
      k: () => move(current - 1),
      o: open,
      Enter: () => { if (document.activeElement && document.activeElement.classList.contains("tile")) open(); },
      x: () => { const b = box(tiles[current]); if (b) { b.checked = !b.checked; showCount(); } },
      a: () => decide("approve"),
      r: () => { if (bulk && document.getElementById("bulk-reject")) pickReason((reason) => decide("reject", reason)); },
      n: () => { const claim = document.getElementById("claim-next"); if (claim) claim.click(); },
    };
  } else {
    const viewer = document.querySelector(".viewer");
    keys = {
      a: () => { const approve = document.getElementById("approve"); if (approve) approve.click(); },
      r: () => {
        const reject = document.getElementById("reject");
        if (!reject) return;
        pickReason((reason) => {
          reject.form.querySelector("select[name=reason]").value = reason;
          reject.form.requestSubmit(reject);
        });
      },
      z: () => { if (viewer) viewer.classList.toggle("zoomed"); },
      u: () => { window.location.href = script.dataset.queue; },
      Escape: () => { if (viewer) viewer.classList.remove("zoomed"); },
    };
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (help.open || picker.open) return; // a dialog handles its own keys; Esc closes it
    if (typing(document.activeElement)) return;
    if (event.key === "?") { event.preventDefault(); help.showModal(); return; }
    const action = keys[event.key];
    if (action) { event.preventDefault(); action(); }
  });
})();
