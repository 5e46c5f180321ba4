// The account control in every page's header: "Sign in" with a Solana wallet (lib/wallets.ts), then the signed-in
// wallet with its SOL balance, "Get demo SOL" when the operator enabled airdrops, and "Sign out". It also keeps
// the signed-in wallet's balances (GET /wallet) for the trade panel.

import { api, ApiError } from "./api";
import { avatar, byId, el, safeUrl } from "./dom";
import { usd } from "./format";
import { onViewer, signOut, storedViewer, type Viewer } from "./identity";
import { shortAddress, solText } from "./money";
import { disconnectWallet, onWalletsChanged, signInWith, solanaWallets, WalletError } from "./wallets";

export interface WalletToken {
  address: string;
  ticker: string;
  amount: string;
  amount_tokens: number;
  value_sol: number;
  value_usd: number;
}

export interface WalletView {
  user_id: string;
  wallet_address: string;
  sol: string;
  sol_amount: number;
  sol_usd: number;
  tokens: WalletToken[];
}

const DEMO_LAMPORTS = "10000000000"; // 10 SOL a click
const INSTALL = [
  ["Phantom", "https://phantom.com/"],
  ["Solflare", "https://solflare.com/"],
  ["Backpack", "https://backpack.app/"],
] as const;

let balances: WalletView | null = null;
const walletListeners = new Set<(wallet: WalletView | null) => void>();
let root: HTMLElement | null = null;
let menu: HTMLElement | null = null;
let button: HTMLButtonElement | null = null;
let busy = false;
let error = "";

/** The viewer when signed in with a wallet (guests trade and tip nothing). */
export function walletViewer(): Viewer | null {
  const me = storedViewer();
  return me?.wallet_address ? me : null;
}

export function currentWallet(): WalletView | null {
  return balances;
}

export function onWallet(listener: (wallet: WalletView | null) => void): void {
  walletListeners.add(listener);
}

function setBalances(next: WalletView | null): void {
  balances = next;
  for (const listener of walletListeners) listener(next);
  render();
}

/** Re-read the signed-in wallet's balances; a token the server no longer accepts signs the wallet out. */
export async function refreshWallet(): Promise<WalletView | null> {
  const me = walletViewer();
  if (!me) {
    if (balances) setBalances(null);
    return null;
  }
  try {
    setBalances(await api<WalletView>("/wallet", { token: me.token }));
  } catch (failure) {
    if (failure instanceof ApiError && failure.status === 401) {
      await signOut().catch(() => undefined);
      setBalances(null);
    }
  }
  return balances;
}

export function airdropEnabled(): boolean {
  return root?.dataset.airdrop === "true";
}

/** Open the account menu (the trade panel's "Sign in to trade" does this). */
export function openAccountMenu(): void {
  if (!menu || !button) return;
  menu.hidden = false;
  button.setAttribute("aria-expanded", "true");
  render();
  menu.querySelector<HTMLElement>("button, a")?.focus();
}

function closeMenu(returnFocus: boolean): void {
  if (!menu || !button || menu.hidden) return;
  menu.hidden = true;
  button.setAttribute("aria-expanded", "false");
  if (returnFocus) button.focus();
}

async function act(work: () => Promise<unknown>): Promise<void> {
  if (busy) return;
  busy = true;
  error = "";
  render();
  try {
    await work();
  } catch (failure) {
    error = failure instanceof WalletError || failure instanceof ApiError ? failure.message : "That did not work; try again.";
  } finally {
    busy = false;
    render();
  }
}

function guestView(): HTMLElement[] {
  const me = storedViewer();
  const found = solanaWallets();
  const intro = el(
    "p",
    { class: "account-note" },
    me ? `You are chatting as ${me.username} (guest). ` : "You are watching as a guest. ",
    "Sign in with a Solana wallet to trade and tip: the wallet signs a one-time message, no transaction.",
  );
  const options = found.length
    ? el(
        "ul",
        { class: "wallet-list" },
        ...found.map((wallet) => {
          const pick = el("button", { class: "wallet-option", attrs: { type: "button" }, dataset: { wallet: wallet.name } });
          const icon = safeUrl(wallet.icon) || (wallet.icon.startsWith("data:image/") ? wallet.icon : "");
          if (icon) pick.append(el("img", { attrs: { src: icon, alt: "", width: "24", height: "24" } }));
          pick.append(el("span", { text: wallet.name }), el("span", { class: "wallet-go", text: busy ? "…" : "Sign in" }));
          if (busy) pick.setAttribute("aria-disabled", "true"); // not disabled: it would drop the focus
          pick.addEventListener("click", () => void act(() => signInWith(wallet).then(() => refreshWallet())));
          return el("li", {}, pick);
        }),
      )
    : el(
        "div",
        { class: "wallet-none" },
        el("strong", { text: "No Solana wallet found in this browser" }),
        el(
          "p",
          {},
          "Install ",
          ...INSTALL.flatMap(([name, href], index) => [
            index ? (index === INSTALL.length - 1 ? " or " : ", ") : "",
            el("a", { text: name, attrs: { href, target: "_blank", rel: "noopener noreferrer" } }),
          ]),
          ", then reload this page.",
        ),
      );
  return [el("h2", { class: "account-title", attrs: { id: "account-menu-title" }, text: "Sign in with a wallet" }), intro, options];
}

function walletView(me: Viewer): HTMLElement[] {
  const address = me.wallet_address ?? "";
  const copy = el("button", { class: "link-button", attrs: { type: "button" }, text: "Copy" });
  copy.addEventListener("click", () => {
    void navigator.clipboard?.writeText(address).then(
      () => (copy.textContent = "Copied"),
      () => undefined,
    );
  });
  const parts: HTMLElement[] = [
    el("h2", { class: "account-title sr-only", attrs: { id: "account-menu-title" }, text: "Your wallet" }),
    el(
      "div",
      { class: "account-who" },
      avatar(me.username, null, "md"),
      el(
        "div",
        {},
        el("strong", { text: me.username }),
        el("span", { class: "muted", text: me.wallet_name ? `via ${me.wallet_name}` : "wallet" }),
      ),
    ),
    el(
      "div",
      { class: "account-address" },
      el("code", { text: shortAddress(address), attrs: { title: address } }),
      copy,
    ),
    el(
      "div",
      { class: "account-balance" },
      el("span", { class: "muted", text: "Balance" }),
      el("strong", { attrs: { id: "account-balance" }, text: balances ? solText(balances.sol_amount) : "…" }),
      el("span", { class: "muted", text: balances ? usd(balances.sol_usd) : "" }),
    ),
  ];
  if (airdropEnabled()) {
    const demo = el("button", { class: "button", attrs: { type: "button", id: "demo-sol" }, text: busy ? "Sending…" : "Get 10 demo SOL" });
    if (busy) demo.setAttribute("aria-disabled", "true");
    demo.addEventListener("click", () =>
      void act(async () => {
        const viewer = walletViewer();
        if (!viewer) return;
        setBalances(await api<WalletView>("/wallet/airdrop", { method: "POST", body: { lamports: DEMO_LAMPORTS }, token: viewer.token }));
      }),
    );
    parts.push(demo, el("p", { class: "account-note", text: "Demo SOL lives on this server's ledger and has no value." }));
  }
  const out = el("button", { class: "button secondary", attrs: { type: "button", id: "sign-out" }, text: "Sign out" });
  if (busy) out.setAttribute("aria-disabled", "true");
  out.addEventListener("click", () =>
    void act(async () => {
      await disconnectWallet(me.wallet_name);
      await signOut();
      setBalances(null);
      closeMenu(true);
    }),
  );
  parts.push(out);
  return parts;
}

function render(): void {
  if (!root || !button || !menu) return;
  const me = walletViewer();
  const label = byId("account-label");
  const sol = byId("account-sol");
  root.dataset.state = me ? "wallet" : "guest";
  label.textContent = me ? shortAddress(me.wallet_address ?? "") : "Sign in";
  button.setAttribute("aria-label", me ? `Wallet ${me.wallet_address}: account menu` : "Sign in with a wallet");
  sol.textContent = me && balances ? solText(balances.sol_amount) : "";
  sol.hidden = !(me && balances);
  if (menu.hidden) return;
  const focused = document.activeElement instanceof HTMLElement && menu.contains(document.activeElement)
    ? document.activeElement.id || document.activeElement.dataset.wallet || ""
    : "";
  const body = me ? walletView(me) : guestView();
  const problem = el("p", { class: "account-error", attrs: { role: "alert" }, text: error });
  problem.hidden = !error;
  menu.replaceChildren(...body, problem);
  // Re-rendering replaces the buttons: keep the keyboard where it was.
  if (focused) {
    const again = menu.querySelector<HTMLElement>(`#${CSS.escape(focused)}, [data-wallet="${CSS.escape(focused)}"]`);
    (again ?? menu.querySelector<HTMLElement>("button, a"))?.focus();
  }
}

/** Wire the header control; every page calls it (through initPage). */
export function initAccount(): void {
  root = document.getElementById("account");
  menu = document.getElementById("account-menu");
  button = document.getElementById("account-button") as HTMLButtonElement | null;
  if (!root || !menu || !button) return;
  const toggle = button;
  const box = root;
  toggle.disabled = false;
  toggle.addEventListener("click", () => {
    if (menu?.hidden) openAccountMenu();
    else closeMenu(false);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !menu?.hidden) closeMenu(true);
  });
  document.addEventListener("click", (event) => {
    const target = event.target;
    if (!(target instanceof Element) || box.contains(target) || !target.isConnected) return;
    if (target.closest("[data-opens-account]")) return; // a "Sign in to trade" button elsewhere just opened it
    closeMenu(false);
  });
  onWalletsChanged(render);
  onViewer(() => void refreshWallet());
  render();
  void refreshWallet();
}
