// Asset requests: the live variant count of the new-request form, and the request page's live
// progress (its JSON polled every two seconds until the run has finished and nothing is in review).
(() => {
  // 1. The new-request form: variants = product of each variable's values x variants per combination.
  const brief = document.getElementById("brief");
  if (brief) {
    const total = document.getElementById("variant-total");
    const line = document.getElementById("variant-count");
    const max = Number.parseInt(brief.dataset.max, 10);
    const count = () => {
      let n = 1;
      const names = new Set(Array.from(brief.querySelectorAll("[data-variable]")).map((el) => el.dataset.variable));
      for (const name of names) {
        const fields = brief.querySelectorAll(`[data-variable="${CSS.escape(name)}"]`);
        let values = 0;
        for (const field of fields) {
          if (field.tagName === "TEXTAREA") {
            values += new Set(field.value.split("\n").map((v) => v.trim()).filter((v) => v)).size;
          } else if (field.type === "checkbox" && field.checked) {
            values += 1;
          }
        }
        n *= values;
      }
      const per = Number.parseInt(brief.querySelector("[name=variants_per_combination]").value, 10);
      n *= Number.isFinite(per) && per > 0 ? per : 0;
      total.textContent = String(n);
      line.classList.toggle("over", n > max);
      document.getElementById("submit-brief").disabled = n < 1 || n > max;
    };
    brief.addEventListener("input", count);
    brief.addEventListener("change", count);
    count();
  }

  // 2. The request page: counts, thumbnails as they arrive, decisions, without reloading.
  const page = document.getElementById("request");
  if (page) {
    const grid = document.getElementById("assets");
    const text = (tag, cls, value) => {
      const el = document.createElement(tag);
      if (cls) el.className = cls;
      el.textContent = value;
      return el;
    };
    const tile = (a) => {
      const li = document.createElement("li");
      li.className = `tile state-${a.state}`;
      li.dataset.serial = a.serial;
      li.dataset.state = a.state;
      const link = document.createElement("a");
      link.href = `/assets/${a.serial}/`;
      if (a.thumbnail) {
        const img = document.createElement("img");
        img.src = a.thumbnail;
        img.alt = a.alt;
        img.width = 256;
        img.height = 256;
        link.append(img);
      } else {
        link.append(text("div", "placeholder", a.state_label));
      }
      const caption = document.createElement("div");
      caption.className = "caption";
      caption.append(text("span", "serial", `#${a.serial}`), text("span", `badge state-${a.state}`, a.state_label));
      const vars = Object.entries(a.variables).map(([k, v]) => `${k}: ${v}`).join(" · ");
      caption.append(text("span", "meta", `${vars} · seed ${a.seed}`));
      const decisions = document.createElement("ul");
      decisions.className = "decisions";
      for (const d of a.decisions) {
        let line = `${d.reviewer} ${d.verb}`;
        if (d.reason) line += `: ${d.reason}`;
        if (d.comment) line += ` “${d.comment}”`;
        decisions.append(text("li", `decision ${d.decision}`, line));
      }
      caption.append(decisions);
      li.append(link, caption);
      return li;
    };
    const render = (data) => {
      const counts = { ...data.counts, total: data.total, generated: data.generated };
      counts.delivered = (data.counts.approved || 0) + (data.counts.published || 0);
      for (const el of page.querySelectorAll("[data-count]")) {
        const value = counts[el.dataset.count];
        if (value !== undefined) el.textContent = String(value);
      }
      const download = document.getElementById("download");
      download.classList.toggle("disabled", counts.delivered === 0);
      const state = document.getElementById("request-state");
      state.textContent = data.cancelled ? "cancelled" : data.run.open ? "generating" : data.run.state || "queued";
      // Replace a tile only when its state or decisions changed, so loaded thumbnails stay put.
      const known = new Map(Array.from(grid.children).map((li) => [li.dataset.serial, li]));
      data.assets.forEach((a, index) => {
        const signature = `${a.state}/${a.thumbnail}/${a.decisions.length}`;
        const old = known.get(String(a.serial));
        if (old && old.dataset.signature === signature) return;
        const fresh = tile(a);
        fresh.dataset.signature = signature;
        if (old) old.replaceWith(fresh);
        else if (grid.children[index]) grid.insertBefore(fresh, grid.children[index]);
        else grid.append(fresh);
      });
      page.dataset.polled = String(Number(page.dataset.polled || 0) + 1);
      return data.run.open || (data.counts.in_review || 0) > 0 || (data.counts.pending || 0) > 0;
    };
    // Every 2 s while something is being made or reviewed, every 15 s otherwise (a reviewer may
    // still decide, or more be asked for); a dropped connection is tried again on the next tick.
    const poll = async () => {
      let busy = true;
      try {
        const response = await fetch(page.dataset.progress, { headers: { Accept: "application/json" } });
        if (response.ok) busy = render(await response.json());
      } catch (error) {
        busy = true;
      }
      window.setTimeout(poll, busy ? 2000 : 15000);
    };
    poll();
  }
})();
