// Display formatting. Numbers from the API are already human units (USD, fractions).

export function compact(value: number): string {
  if (!Number.isFinite(value)) return "0";
  return new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 1 }).format(value);
}

export function viewers(count: number): string {
  return `${compact(count)} ${count === 1 ? "viewer" : "viewers"}`;
}

/** 3725 s → "1:02:05"; 65 s → "1:05". */
export function clock(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = h > 0 ? String(m).padStart(2, "0") : String(m);
  return `${h > 0 ? `${h}:` : ""}${mm}:${String(sec).padStart(2, "0")}`;
}

export function usd(value: number): string {
  if (!Number.isFinite(value)) return "$0";
  if (value !== 0 && Math.abs(value) < 0.01) {
    return `$${value.toPrecision(3)}`;
  }
  if (Math.abs(value) >= 10_000) {
    return `$${new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 2 }).format(value)}`;
  }
  return new Intl.NumberFormat("en", { style: "currency", currency: "USD", maximumFractionDigits: 2 }).format(value);
}

/** 0.253 → "+25.3%". */
export function change(fraction: number): string {
  if (!Number.isFinite(fraction)) return "0%";
  const pct = fraction * 100;
  const sign = pct > 0 ? "+" : "";
  return `${sign}${pct.toFixed(Math.abs(pct) >= 100 ? 0 : 1)}%`;
}

export function timeAgo(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "";
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return "";
  const s = Math.max(0, Math.round((now - then) / 1000));
  if (s < 45) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  const days = Math.round(s / 86400);
  if (days < 30) return `${days} ${days === 1 ? "day" : "days"} ago`;
  return new Date(then).toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

export function dateTime(iso: string | null | undefined): string {
  if (!iso) return "";
  const then = new Date(iso);
  if (Number.isNaN(then.getTime())) return "";
  return then.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

export function chatTime(iso: string | null | undefined): string {
  if (!iso) return "";
  const then = new Date(iso);
  if (Number.isNaN(then.getTime())) return "";
  return then.toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit" });
}

export function plural(count: number, one: string, many = `${one}s`): string {
  return `${compact(count)} ${count === 1 ? one : many}`;
}

/** Sessions are titled "<name> is live" while they run; a recording reads better by its date. */
export function recordingTitle(title: string | null | undefined, username: string, endedAt: string | null): string {
  if (title && title !== `${username} is live`) return title;
  const when = endedAt ? new Date(endedAt) : null;
  const day = when && !Number.isNaN(when.getTime())
    ? when.toLocaleDateString(undefined, { weekday: "short", month: "short", day: "numeric" })
    : "";
  return day ? `Stream of ${day}` : `${username}'s stream`;
}
