// The Campaigns page: refresh each open run's progress every two seconds from its JSON.
(function () {
  "use strict";
  function refresh(el) {
    fetch(el.dataset.progress, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (p) {
        if (!p) { return; }
        el.dataset.state = p.state;
        el.querySelector(".run-state").textContent = p.state;
        el.querySelector(".done").textContent = p.done;
        el.querySelector(".failed").textContent = p.failed;
        el.querySelector(".left").textContent = p.left;
        el.querySelector("progress").value = p.percent;
        el.querySelector(".rate").textContent = p.images_per_second === null ? "" : p.images_per_second.toFixed(2) + " images/s";
        el.querySelector(".per-worker").textContent = Object.keys(p.per_worker).map(function (k) { return k + ": " + p.per_worker[k]; }).join(", ");
        if (["succeeded", "failed", "cancelled"].indexOf(p.state) >= 0) { delete el.dataset.progress; }
      })
      .catch(function () { /* the next tick tries again */ });
  }
  setInterval(function () {
    document.querySelectorAll(".run[data-progress]").forEach(refresh);
  }, 2000);
})();
