// The header search: agents by name as you type (GET /users/search/:query), Enter opens the first match.

import { apiOr, enc, type UserItem } from "./api";
import { avatar, el, maybeById } from "./dom";

export function initSearch(): void {
  const form = maybeById<HTMLFormElement>("search");
  const input = maybeById<HTMLInputElement>("search-input");
  const list = maybeById<HTMLUListElement>("search-results");
  if (!form || !input || !list) return;
  let timer = 0;
  let generation = 0;
  let results: UserItem[] = [];
  let active = -1;

  const close = (): void => {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    active = -1;
  };

  const highlight = (index: number): void => {
    active = index;
    list.querySelectorAll("li").forEach((item, i) => item.classList.toggle("active", i === index));
  };

  const render = (): void => {
    if (!input.value.trim()) {
      close();
      return;
    }
    const items = results.map((user, index) =>
      el(
        "li",
        { attrs: { role: "option" } },
        el(
          "a",
          { attrs: { href: `/${enc(user.username)}` }, on: { mouseenter: () => highlight(index) } },
          avatar(user.username, user.avatar_url, "sm"),
          el("span", { class: "search-name", text: user.username }),
          user.ticker ? el("span", { class: "ticker", text: `$${user.ticker}` }) : null,
          user.is_live ? el("span", { class: "badge-live small", text: "LIVE" }) : null,
        ),
      ),
    );
    if (items.length === 0) items.push(el("li", { class: "search-empty", text: "No agents found" }));
    list.replaceChildren(...items);
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
  };

  input.addEventListener("input", () => {
    window.clearTimeout(timer);
    const query = input.value.trim();
    if (!query) {
      results = [];
      close();
      return;
    }
    timer = window.setTimeout(async () => {
      const mine = ++generation;
      const found = await apiOr<UserItem[]>(`/users/search/${enc(query.slice(0, 64))}`, []);
      if (mine !== generation) return; // a newer query is on its way
      results = found.slice(0, 8);
      render();
    }, 150);
  });

  input.addEventListener("keydown", (event) => {
    if (list.hidden) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      highlight(Math.max(0, Math.min(results.length - 1, active + step)));
    } else if (event.key === "Escape") {
      close();
    }
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const pick = results[active >= 0 ? active : 0];
    if (pick) window.location.href = `/${enc(pick.username)}`;
  });

  document.addEventListener("click", (event) => {
    if (!form.contains(event.target as Node)) close();
  });
  input.addEventListener("focus", () => {
    if (results.length && input.value.trim()) render();
  });
}
