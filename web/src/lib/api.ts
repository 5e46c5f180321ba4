// JSON calls to /api/v1. Errors carry the platform's {error, code} body.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface CallOptions {
  method?: string;
  body?: unknown;
  token?: string | null;
  signal?: AbortSignal;
}

export async function api<T>(path: string, options: CallOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  const response = await fetch(`/api/v1${path}`, {
    method: options.method ?? "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: options.signal,
    cache: "no-store",
  });
  const text = await response.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const body = (data ?? {}) as { error?: string; code?: string };
    throw new ApiError(response.status, body.code ?? "http_error", body.error ?? `request failed (${response.status})`);
  }
  return data as T;
}

/** Like api(), but a failure (network, 4xx/5xx) gives `fallback`: for panels that simply stay hidden. */
export async function apiOr<T>(path: string, fallback: T, options: CallOptions = {}): Promise<T> {
  try {
    return await api<T>(path, options);
  } catch {
    return fallback;
  }
}

export const enc = encodeURIComponent;

// Shapes of the public reads this front-end uses (API.md "Public API").

export interface LiveUser {
  user_id: string;
  username: string;
  avatar_url: string;
  ticker: string;
  token_address: string;
  market_cap: number;
  rank: number;
  viewer_count: number;
  session_id: string;
  thumbnail_url: string;
}

export interface ActiveSession {
  session_id: string;
  streamer_id: string;
  username: string;
  title: string;
  status: string;
  viewer_count: number;
  started_at: string | null;
  thumbnail_url: string;
  playback: { flv: string; hls: string };
}

export interface UserItem {
  user_id: string;
  username: string;
  avatar_url: string;
  ticker: string;
  token_address: string;
  verified: boolean;
  is_live: boolean;
  created_at?: string | null;
}

export interface RecordedSession extends ActiveSession {
  ended_at: string | null;
  duration_seconds: number;
  recording_url: string | null;
  peak_viewers?: number;
}

export interface TrendingToken {
  user_id: string;
  username: string;
  ticker: string;
  address: string;
  growth_24h: number;
  market_cap: number;
}

export interface TokenStats {
  address: string;
  ticker: string;
  current_price: number;
  price_sol: number;
  market_cap: number;
  growth: Record<string, number>;
  volume?: Record<string, number>;
  bonding_progress?: number;
  graduated?: boolean;
}

export interface Comment {
  _id?: string;
  chat_event_id: string;
  streamer_id?: string;
  session_id?: string | null;
  type: string;
  text: string;
  timestamp: string;
  sender_user_id: string;
  sender_username: string;
  sender_pfp?: string;
  tip_data?: { amount?: number | string; lamports?: string; tx_hash?: string } | null;
  trade_data?: {
    amount?: number | string;
    type?: string;
    tx_hash?: string;
    token_ticker?: string;
    amount_tokens?: number;
  } | null;
}

export interface Pinned {
  streamer_id: string;
  session_id: string | null;
  pinned: boolean;
  chat_event_id: string | null;
  message: Comment | null;
}
