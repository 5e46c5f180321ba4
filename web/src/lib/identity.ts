// The viewer's identity, kept in localStorage: a guest account created on first use (POST /auth/guest), or the
// account of a Solana wallet that signed the server's nonce (lib/wallets.ts). Signing out of a wallet returns to
// the guest this browser had before, so a guest's chat name survives a sign-in and sign-out.

import { api, ApiError } from "./api";

export interface Viewer {
  token: string;
  user_id: string;
  username: string;
  /** Set when signed in with a wallet: the wallet's base58 address. */
  wallet_address?: string;
  /** The Wallet Standard name of the wallet that signed (Phantom, Solflare, …). */
  wallet_name?: string;
}

interface Profile {
  user_id: string;
  username: string;
}

const KEY = "retake.viewer";
const GUEST_KEY = "retake.guest"; // the guest set aside while a wallet is signed in
export const NAME_RE = /^[A-Za-z0-9_-]{3,32}$/;

let current: Promise<Viewer> | null = null;
const listeners = new Set<(viewer: Viewer) => void>();

function parse(raw: string | null): Viewer | null {
  try {
    const data = raw ? (JSON.parse(raw) as Partial<Viewer>) : null;
    if (data && typeof data.token === "string" && typeof data.user_id === "string") {
      const viewer: Viewer = { token: data.token, user_id: data.user_id, username: String(data.username ?? "") };
      if (typeof data.wallet_address === "string" && data.wallet_address) viewer.wallet_address = data.wallet_address;
      if (typeof data.wallet_name === "string") viewer.wallet_name = data.wallet_name;
      return viewer;
    }
  } catch {
    // corrupt: a fresh guest is made below
  }
  return null;
}

function read(key: string): Viewer | null {
  try {
    return parse(window.localStorage.getItem(key));
  } catch {
    return null; // storage blocked
  }
}

function write(key: string, viewer: Viewer | null): void {
  try {
    if (viewer) window.localStorage.setItem(key, JSON.stringify(viewer));
    else window.localStorage.removeItem(key);
  } catch {
    // private mode without storage: the identity lasts for this page only
  }
}

function save(viewer: Viewer): Viewer {
  write(KEY, viewer);
  current = Promise.resolve(viewer);
  for (const listener of listeners) listener(viewer);
  return viewer;
}

const GUEST_RETRIES = 4;

async function createGuest(): Promise<Viewer> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      const answer = await api<{ token: string; user: Profile }>("/auth/guest", { method: "POST", body: {} });
      return { token: answer.token, user_id: answer.user.user_id, username: answer.user.username };
    } catch (error) {
      // Sign-ups are rate limited per address (many viewers behind one NAT): wait and try again.
      if (!(error instanceof ApiError && error.status === 429) || attempt >= GUEST_RETRIES) throw error;
      await new Promise((resolve) => window.setTimeout(resolve, 15_000 * (attempt + 1)));
    }
  }
}

/** The stored identity with its name refreshed; null when the server no longer accepts its token. */
async function revalidate(stored: Viewer): Promise<Viewer | null> {
  try {
    const me = await api<Profile>("/users/me", { token: stored.token });
    return { ...stored, user_id: me.user_id, username: me.username };
  } catch (error) {
    return error instanceof ApiError && error.status === 401 ? null : stored; // offline for a moment: keep it
  }
}

async function load(): Promise<Viewer> {
  const stored = read(KEY);
  const valid = stored ? await revalidate(stored) : null;
  if (valid) return save(valid);
  if (stored?.wallet_address) {
    // The wallet's session expired: back to the guest kept aside (the header offers the wallet again).
    const guest = read(GUEST_KEY);
    const restored = guest ? await revalidate(guest) : null;
    write(GUEST_KEY, null);
    if (restored) return save(restored);
  }
  return save(await createGuest());
}

/** The viewer, created on first use; the same promise for the whole page. */
export function viewer(): Promise<Viewer> {
  if (!current) {
    current = load();
    current.catch(() => {
      current = null; // a failed sign-up is retried on the next call
    });
  }
  return current;
}

/** What this browser remembers, without asking the server (the header uses it so no page makes a guest). */
export function storedViewer(): Viewer | null {
  return read(KEY);
}

export function onViewer(listener: (viewer: Viewer) => void): void {
  listeners.add(listener);
}

/** Change the display name (same rules as agent names). */
export async function rename(username: string): Promise<Viewer> {
  const me = await viewer();
  const profile = await api<Profile>("/users/me/username", { method: "PATCH", body: { username }, token: me.token });
  return save({ ...me, username: profile.username });
}

/** A wallet signed the nonce: its account becomes the viewer; the guest is kept for the sign-out. */
export function signedInWithWallet(token: string, user: Profile, walletAddress: string, walletName: string): Viewer {
  const before = read(KEY);
  if (before && !before.wallet_address) write(GUEST_KEY, before);
  return save({ token, user_id: user.user_id, username: user.username, wallet_address: walletAddress, wallet_name: walletName });
}

/** Back to the guest this browser had before the wallet (or a new guest). */
export async function signOut(): Promise<Viewer> {
  const guest = read(GUEST_KEY);
  write(GUEST_KEY, null);
  const restored = guest ? await revalidate(guest) : null;
  return save(restored ?? (await createGuest()));
}

// Another tab signed in or out: follow it, so every tab trades and chats as the same account.
window.addEventListener("storage", (event) => {
  if (event.key !== KEY) return;
  const next = parse(event.newValue);
  if (next) {
    current = Promise.resolve(next);
    for (const listener of listeners) listener(next);
  }
});
