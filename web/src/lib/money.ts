// Raw ledger amounts (lamports, token atoms: strings of digits in the API) and their human forms. Arithmetic on
// raw amounts is BigInt, so what the page sends as min_out or max_in is exact.

export const SOL_DECIMALS = 9;

/** "1.5" with 9 decimals → 1500000000n; null when it is not a positive decimal number with at most `decimals`. */
export function parseUnits(text: string, decimals: number): bigint | null {
  const clean = text.trim().replace(/,/g, "");
  const match = /^(\d*)(?:\.(\d*))?$/.exec(clean);
  if (!match || (match[1] === "" && !match[2])) return null;
  const whole = match[1] || "0";
  const fraction = match[2] ?? "";
  if (fraction.length > decimals) return null;
  const value = BigInt(whole) * 10n ** BigInt(decimals) + BigInt((fraction + "0".repeat(decimals)).slice(0, decimals) || "0");
  return value;
}

/** 1500000000n, 9 → "1.5": the exact decimal text (for inputs). */
export function formatUnits(raw: bigint | string, decimals: number): string {
  const value = BigInt(raw);
  const base = 10n ** BigInt(decimals);
  const whole = value / base;
  const fraction = (value % base).toString().padStart(decimals, "0").replace(/0+$/, "");
  return fraction ? `${whole}.${fraction}` : whole.toString();
}

export function toNumber(raw: bigint | string, decimals: number): number {
  return Number(formatUnits(raw, decimals));
}

/** SOL for people: up to 4 decimals (more for dust, so a tiny amount never reads as 0). */
export function solText(value: number): string {
  if (!Number.isFinite(value) || value === 0) return "0 SOL";
  const digits = Math.abs(value) < 0.001 ? 6 : 4;
  return `${new Intl.NumberFormat("en", { maximumFractionDigits: digits }).format(value)} SOL`;
}

/** Token amounts: 1234567.8 → "1.23M". */
export function tokenText(value: number, ticker: string): string {
  const text = Math.abs(value) >= 10_000
    ? new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 2 }).format(value)
    : new Intl.NumberFormat("en", { maximumFractionDigits: value < 1 ? 6 : 2 }).format(value);
  return `${text} $${ticker}`;
}

export function percent(fraction: number, digits = 2): string {
  if (!Number.isFinite(fraction)) return "–";
  return `${(fraction * 100).toFixed(digits)}\u00a0%`; // never "1.0" at a line's end and "%" on the next
}

export function shortAddress(address: string): string {
  return address.length > 10 ? `${address.slice(0, 4)}…${address.slice(-4)}` : address;
}

/** raw × (1 − bps/10000), rounded down: the least a trade may return. */
export function lessSlippage(raw: bigint, bps: number): bigint {
  return (raw * BigInt(10_000 - bps)) / 10_000n;
}

/** raw × (1 + bps/10000), rounded up: the most a trade may take. */
export function plusSlippage(raw: bigint, bps: number): bigint {
  return (raw * BigInt(10_000 + bps) + 9_999n) / 10_000n;
}
