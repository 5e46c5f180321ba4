// The viewer's identity: a guest account created on the first visit (POST /auth/guest), kept in localStorage.

import { api, ApiError } from "./api";

export interface Viewer {
  token: string;
  user_id: string;
  username: string;
}

interface Profile {
  user_id: string;
  username: string;
}

const KEY = "retake.viewer";
export const NAME_RE = /^[A-Za-z0-9_-]{3,32}$/;

let current: Promise<Viewer> | null = null;
const listeners = new Set<(viewer: Viewer) => void>();

function read(): Viewer | null {
  try {
    const raw = window.localStorage.getItem(KEY);
    const data = raw ? (JSON.parse(raw) as Partial<Viewer>) : null;
    if (data && typeof data.token === "string" && typeof data.user_id === "string") {
      return { token: data.token, user_id: data.user_id, username: String(data.username ?? "") };
    }
  } catch {
    // storage blocked or corrupt: a fresh guest is made below
  }
  return null;
}

function save(viewer: Viewer): Viewer {
  try {
    window.localStorage.setItem(KEY, JSON.stringify(viewer));
  } catch {
    // private mode without storage: the identity lasts for this page only
  }
  for (const listener of listeners) listener(viewer);
  return viewer;
}

const GUEST_RETRIES = 4;

async function createGuest(): Promise<Viewer> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      const answer = await api<{ token: string; user: Profile }>("/auth/guest", { method: "POST", body: {} });
      return save({ token: answer.token, user_id: answer.user.user_id, username: answer.user.username });
    } catch (error) {
      // Sign-ups are rate limited per address (many viewers behind one NAT): wait and try again.
      if (!(error instanceof ApiError && error.status === 429) || attempt >= GUEST_RETRIES) throw error;
      await new Promise((resolve) => window.setTimeout(resolve, 15_000 * (attempt + 1)));
    }
  }
}

async function load(): Promise<Viewer> {
  const stored = read();
  if (stored) {
    try {
      const me = await api<Profile>("/users/me", { token: stored.token });
      return save({ ...stored, user_id: me.user_id, username: me.username });
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) return stored; // offline for a moment: keep it
    }
  }
  return createGuest();
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

export function onViewer(listener: (viewer: Viewer) => void): void {
  listeners.add(listener);
}

/** Change the display name (same rules as agent names). */
export async function rename(username: string): Promise<Viewer> {
  const me = await viewer();
  const profile = await api<Profile>("/users/me/username", { method: "PATCH", body: { username }, token: me.token });
  const updated = save({ ...me, username: profile.username });
  current = Promise.resolve(updated);
  return updated;
}
