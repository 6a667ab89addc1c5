// The bell: how many notifications are unread, fetched once per page from the inbox's JSON.
(() => {
  const bell = document.getElementById("inbox-count");
  if (!bell) return;
  fetch(bell.dataset.src, { headers: { Accept: "application/json" } })
    .then((response) => (response.ok ? response.json() : null))
    .then((data) => {
      if (data && data.unread > 0) {
        bell.textContent = String(data.unread);
        bell.setAttribute("aria-label", `${data.unread} unread`);
      }
    })
    .catch(() => {});
})();
