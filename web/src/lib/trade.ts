// The buy/sell panel of the watch page: an amount in SOL or in the token, a live quote (GET /tokens/:a/quote:
// what you get, price impact, fee, the minimum received or maximum paid at the chosen slippage), a confirm step
// that fixes those terms, then POST /tokens/:a/swap with min_out or max_in. The trade is announced in the chat as a
// `trade` line; a refused trade (slippage 409, insufficient funds, graduated pool) is explained and changes nothing.

import { api, ApiError, enc } from "./api";
import { currentWallet, onWallet, openAccountMenu, refreshWallet, walletViewer } from "./account";
import type { ChatPanel } from "./chat";
import { byId, el } from "./dom";
import { onViewer } from "./identity";
import type { TokenMarket } from "./market";
import {
  formatUnits,
  lessSlippage,
  parseUnits,
  percent,
  plusSlippage,
  SOL_DECIMALS,
  solText,
  toNumber,
  tokenText,
} from "./money";

type Side = "buy" | "sell";
type Unit = "sol" | "token";

interface Quote {
  amount_in: string;
  amount_in_excluding_fee: string;
  amount_out: string;
  fee: { total: string };
  fee_token: string;
  completes_curve: boolean;
}

interface TradeRecord {
  tx_hash: string;
  side: Side;
  amount_sol: number;
  amount_tokens: number;
}

/** The terms the viewer reviews and confirms: sent as they are, so the trade cannot be worse than shown. */
interface Terms {
  side: Side;
  unit: Unit;
  mode: "exact_in" | "exact_out";
  amount: bigint;
  quote: Quote;
  bps: number;
  limit: bigint; // min_out for exact_in, max_in for exact_out
}

const QUOTE_DELAY_MS = 250;

/** Ledger refusals in words (API.md error codes). */
export function explain(error: unknown, ticker: string, what: "trade" | "tip" = "trade"): string {
  if (!(error instanceof ApiError)) return "The server could not be reached; check your connection and try again.";
  switch (error.code) {
    case "slippage_exceeded":
      return "The price moved past your slippage limit, so nothing was traded. Check the new quote and try again, or allow more slippage.";
    case "insufficient_balance":
      return error.message.includes("SOL")
        ? `Not enough SOL in your wallet for this ${what}. Nothing was ${what === "tip" ? "sent" : "traded"}.`
        : `You do not hold that many $${ticker}. Nothing was traded.`;
    case "pool_completed":
      return `$${ticker} has graduated: its bonding curve is complete and this pool no longer trades.`;
    case "insufficient_liquidity":
      return "The bonding curve cannot fill that much; try a smaller amount.";
    case "amount_too_small":
      return "That amount is too small: all of it would go to fees.";
    case "invalid_amount":
      return "Enter an amount greater than zero.";
    case "muted":
      return "You are muted in this chat, so you cannot tip here.";
    case "self_tip":
      return "You cannot tip yourself.";
    case "rate_limited":
      return "Too many requests at once; wait a moment and try again.";
    default:
      if (error.status === 401) return "Your sign-in has expired; sign in with your wallet again.";
      if (error.status === 429) return "Too many requests at once; wait a moment and try again.";
      return error.message;
  }
}

function radios(name: string): HTMLInputElement[] {
  return [...document.querySelectorAll<HTMLInputElement>(`input[name="${name}"]`)];
}

function checked(name: string): string {
  return radios(name).find((r) => r.checked)?.value ?? "";
}

export class TradePanel {
  private readonly form = byId<HTMLFormElement>("trade-form");
  private readonly amount = byId<HTMLInputElement>("trade-amount");
  private readonly review = byId<HTMLButtonElement>("trade-review");
  private readonly confirmBox = byId("trade-confirm-box");
  private readonly confirmButton = byId<HTMLButtonElement>("trade-confirm");
  private readonly errorBox = byId("trade-error");
  private readonly result = byId("trade-result");
  private readonly quoteBox = byId("trade-quote");
  private quote: Quote | null = null;
  private quoteFor = "";
  private terms: Terms | null = null;
  private quoteTimer = 0;
  private inflight: AbortController | null = null;
  private submitting = false;

  constructor(
    private readonly address: string,
    private readonly ticker: string,
    private readonly market: TokenMarket,
    private readonly chat: ChatPanel,
  ) {
    for (const input of radios("trade-unit")) input.addEventListener("change", () => this.changed(true));
    for (const input of radios("trade-slippage")) input.addEventListener("change", () => this.renderQuote());
    this.amount.addEventListener("input", () => this.changed(false));
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.startReview();
    });
    byId("trade-back").addEventListener("click", () => this.closeReview(true));
    this.confirmButton.addEventListener("click", () => void this.execute());
    this.review.dataset.opensAccount = ""; // opening the account menu from here must not close it again
    onWallet(() => this.renderBalance());
    onViewer(() => this.renderBalance());
    market.onChange(() => this.renderReviewState());
    market.onTrade(() => {
      if (this.terms) byId("trade-confirm-note").hidden = false; // the reviewed terms stay as they were
      else this.scheduleQuote();
    });
  }

  /** Buy or Sell was picked (the side radios belong to the page, which also shows the tip form). */
  setSide(side: Side): void {
    if (this.form.dataset.side !== side) {
      // Start from what this side spends (SOL to buy, the token to sell); the toggle can still flip it.
      const unit = byId<HTMLInputElement>(side === "buy" ? "trade-unit-sol" : "trade-unit-token");
      unit.checked = true;
      if (this.form.dataset.side) this.amount.value = "";
    }
    this.form.dataset.side = side;
    this.changed(true);
  }

  private side(): Side {
    return this.form.dataset.side === "sell" ? "sell" : "buy";
  }

  private unit(): Unit {
    return checked("trade-unit") === "token" ? "token" : "sol";
  }

  private bps(): number {
    return Number(checked("trade-slippage")) || 100;
  }

  private mode(): "exact_in" | "exact_out" {
    // The amount typed is what you pay (exact in) when it is in the currency you spend, else what you get.
    const spends: Unit = this.side() === "buy" ? "sol" : "token";
    return this.unit() === spends ? "exact_in" : "exact_out";
  }

  private decimals(unit: Unit = this.unit()): number {
    return unit === "sol" ? SOL_DECIMALS : this.market.tokenDecimals;
  }

  private raw(): bigint | null {
    const value = parseUnits(this.amount.value, this.decimals());
    return value !== null && value > 0n ? value : null;
  }

  private changed(layout: boolean): void {
    this.closeReview(false);
    this.result.hidden = true;
    this.quote = null; // a quote for other inputs is never shown, nor reviewed
    this.quoteFor = "";
    this.quoteBox.hidden = true;
    if (layout) this.renderLayout();
    this.scheduleQuote();
  }

  private renderLayout(): void {
    const side = this.side();
    const unit = this.unit();
    byId("trade-amount-unit").textContent = unit === "sol" ? "SOL" : `$${this.ticker}`;
    this.review.textContent = side === "buy" ? `Review buy` : `Review sell`;
    this.review.dataset.side = side;
    this.confirmButton.dataset.side = side;
    const chips = byId("trade-quick");
    const presets: [string, () => string][] =
      unit === "sol"
        ? ["0.1", "0.5", "1", "5"].map((v) => [`${v} SOL`, () => v])
        : side === "sell"
          ? [25, 50, 100].map((pct) => [pct === 100 ? "All" : `${pct} %`, () => this.shareOfHolding(pct)])
          : ["100000", "1000000", "10000000"].map((v) => [tokenText(Number(v), this.ticker), () => v]);
    chips.replaceChildren(
      ...presets.map(([label, value]) => {
        const chip = el("button", { class: "chip", text: label, attrs: { type: "button" } });
        chip.addEventListener("click", () => {
          this.amount.value = value();
          this.changed(false);
        });
        return chip;
      }),
    );
    this.renderBalance();
  }

  private holding(): bigint {
    const token = currentWallet()?.tokens.find((t) => t.address === this.address);
    return token ? BigInt(token.amount) : 0n;
  }

  private shareOfHolding(pct: number): string {
    return formatUnits((this.holding() * BigInt(pct)) / 100n, this.market.tokenDecimals);
  }

  private renderBalance(): void {
    const box = byId("trade-balance");
    const wallet = currentWallet();
    if (!walletViewer()) {
      box.dataset.sol = "";
      box.dataset.atoms = "";
      box.textContent = "Sign in with a wallet to trade.";
      this.review.textContent = "Sign in to trade";
      return;
    }
    this.review.textContent = this.side() === "buy" ? "Review buy" : "Review sell";
    // The raw amounts too, so what the page shows can be compared with GET /wallet exactly.
    box.dataset.sol = wallet?.sol ?? "";
    box.dataset.atoms = wallet ? this.holding().toString() : "";
    box.textContent = wallet
      ? `Balance: ${solText(wallet.sol_amount)} · ${tokenText(toNumber(this.holding(), this.market.tokenDecimals), this.ticker)}`
      : "Balance: …";
  }

  private renderReviewState(): void {
    const closed = this.market.graduated;
    this.review.disabled = closed || this.submitting;
    if (closed) this.showError(`$${this.ticker} has graduated: its bonding curve is complete and this pool no longer trades.`);
  }

  private scheduleQuote(): void {
    window.clearTimeout(this.quoteTimer);
    this.quoteTimer = window.setTimeout(() => void this.fetchQuote(), QUOTE_DELAY_MS);
  }

  private async fetchQuote(): Promise<void> {
    const amount = this.raw();
    this.inflight?.abort();
    if (amount === null) {
      this.quote = null;
      this.quoteFor = "";
      this.quoteBox.hidden = true;
      if (this.amount.value.trim() && !this.market.graduated) this.showError(this.amountProblem());
      else if (!this.market.graduated) this.showError("");
      return;
    }
    const key = `${this.side()}:${this.mode()}:${amount}`;
    const controller = new AbortController();
    this.inflight = controller;
    try {
      const query = `side=${this.side()}&mode=${this.mode()}&amount=${amount}`;
      const quote = await api<Quote>(`/tokens/${enc(this.address)}/quote?${query}`, { signal: controller.signal });
      if (controller.signal.aborted) return;
      this.quote = quote;
      this.quoteFor = key;
      this.showError("");
      this.renderQuote();
    } catch (error) {
      if (controller.signal.aborted) return;
      this.quote = null;
      this.quoteFor = "";
      this.quoteBox.hidden = true;
      this.showError(explain(error, this.ticker));
    }
  }

  private amountProblem(): string {
    const decimals = this.decimals();
    return `Enter a number greater than zero, with at most ${decimals} decimals.`;
  }

  /** What the current quote means for the viewer, at the chosen slippage. */
  private describe(quote: Quote, side: Side, mode: Terms["mode"], bps: number) {
    const tokens = this.market.tokenDecimals;
    const solOf = (raw: bigint | string): string => solText(toNumber(raw, SOL_DECIMALS));
    const tokOf = (raw: bigint | string): string => tokenText(toNumber(raw, tokens), this.ticker);
    const out = BigInt(quote.amount_out);
    const inn = BigInt(quote.amount_in);
    const fee = BigInt(quote.fee.total);
    const feeInQuote = quote.fee_token === "quote";
    // Gross amounts on both sides of the curve, to compare the trade's price with the spot price.
    const solSide = side === "buy" ? (feeInQuote ? BigInt(quote.amount_in_excluding_fee) : inn) : feeInQuote ? out + fee : out;
    const tokenSide = side === "buy" ? (feeInQuote ? out : out + fee) : feeInQuote ? inn : BigInt(quote.amount_in_excluding_fee);
    const executed = toNumber(solSide, SOL_DECIMALS) / Math.max(toNumber(tokenSide, tokens), Number.EPSILON);
    const spot = this.market.priceSol;
    const impact = spot > 0 ? Math.abs(executed / spot - 1) : 0;
    // The fee as a share of the amount it was taken from (what was paid in, or the output before the fee).
    const feeBase = feeInQuote ? (side === "buy" ? inn : solSide) : side === "buy" ? tokenSide : inn;
    const feeShare = feeBase > 0n ? Number((fee * 1_000_000n) / feeBase) / 1_000_000 : 0;
    const receivesSol = side === "sell";
    const limit = mode === "exact_in" ? lessSlippage(out, bps) : plusSlippage(inn, bps);
    return {
      mainLabel: mode === "exact_in" ? "You receive" : "You pay",
      main: mode === "exact_in" ? (receivesSol ? solOf(out) : tokOf(out)) : receivesSol ? tokOf(inn) : solOf(inn),
      pays: receivesSol ? tokOf(inn) : solOf(inn),
      gets: receivesSol ? solOf(out) : tokOf(out),
      impact,
      fee: `${feeInQuote ? solOf(fee) : tokOf(fee)} (${percent(feeShare, 1)})`,
      limitLabel: mode === "exact_in" ? "Minimum received" : "Maximum paid",
      limitText: mode === "exact_in" ? (receivesSol ? solOf(limit) : tokOf(limit)) : receivesSol ? tokOf(limit) : solOf(limit),
      limit,
    };
  }

  private renderQuote(): void {
    const quote = this.quote;
    if (!quote) return;
    const view = this.describe(quote, this.side(), this.mode(), this.bps());
    byId("quote-main-label").textContent = view.mainLabel;
    byId("quote-main").textContent = `≈ ${view.main}`;
    const impact = byId("quote-impact");
    impact.textContent = percent(view.impact);
    impact.dataset.level = view.impact >= 0.05 ? "high" : view.impact >= 0.01 ? "medium" : "low";
    byId("quote-fee").textContent = view.fee;
    byId("quote-limit-label").textContent = view.limitLabel;
    byId("quote-limit").textContent = view.limitText;
    this.quoteBox.hidden = false;
  }

  private startReview(): void {
    if (!walletViewer()) {
      openAccountMenu();
      return;
    }
    const amount = this.raw();
    const key = amount === null ? "" : `${this.side()}:${this.mode()}:${amount}`;
    if (amount === null || !this.quote || this.quoteFor !== key) {
      this.showError(amount === null ? this.amountProblem() : "Wait for the quote, then review.");
      if (amount !== null) void this.fetchQuote();
      return;
    }
    const side = this.side();
    const mode = this.mode();
    const bps = this.bps();
    const view = this.describe(this.quote, side, mode, bps);
    const spend = side === "buy" ? BigInt(currentWallet()?.sol ?? "0") : this.holding();
    if (BigInt(this.quote.amount_in) > spend) {
      this.showError(side === "buy" ? "Not enough SOL in your wallet for this trade." : `You do not hold that many $${this.ticker}.`);
      return;
    }
    this.terms = { side, unit: this.unit(), mode, amount, quote: this.quote, bps, limit: view.limit };
    const verb = side === "buy" ? "Buy" : "Sell";
    const bound = mode === "exact_in" ? `at least ${view.limitText}` : `at most ${view.limitText}`;
    const slip = `slippage ${percent(bps / 10_000, 1)}`;
    const what =
      mode === "exact_in"
        ? `${verb} for ${view.pays} and receive ≈ ${view.gets} (${bound}, ${slip}).`
        : `${verb} ≈ ${view.gets} for ≈ ${view.pays} (${bound}, ${slip}).`;
    byId("trade-confirm-text").textContent =
      what + (this.quote.completes_curve ? " This trade completes the bonding curve." : "");
    this.confirmButton.textContent = `Confirm ${side}`;
    byId("trade-confirm-note").hidden = true;
    this.confirmBox.hidden = false;
    this.review.hidden = true;
    this.showError("");
    this.confirmButton.focus();
  }

  private closeReview(focus: boolean): void {
    this.terms = null;
    this.confirmBox.hidden = true;
    this.review.hidden = false;
    if (focus) this.review.focus();
  }

  private async execute(): Promise<void> {
    const terms = this.terms;
    const me = walletViewer();
    if (!terms || !me || this.submitting) return;
    this.submitting = true;
    this.confirmButton.disabled = true;
    this.confirmButton.textContent = "Trading…";
    const body: Record<string, string> = { side: terms.side, amount: terms.amount.toString(), mode: terms.mode };
    body[terms.mode === "exact_in" ? "min_out" : "max_in"] = terms.limit.toString();
    try {
      const trade = await api<TradeRecord>(`/tokens/${enc(this.address)}/swap`, { method: "POST", body, token: me.token });
      this.closeReview(false);
      this.amount.value = "";
      this.quote = null;
      this.quoteBox.hidden = true;
      const verb = trade.side === "buy" ? "Bought" : "Sold";
      this.result.replaceChildren(
        el("strong", { text: `${verb} ${tokenText(trade.amount_tokens, this.ticker)} for ${solText(trade.amount_sol)}.` }),
        el("span", { class: "muted", text: ` Transaction ${trade.tx_hash.slice(0, 8)}…` }),
      );
      this.result.hidden = false;
      void this.chat
        .announceTrade({
          tx_hash: trade.tx_hash,
          side: trade.side,
          amount_sol: trade.amount_sol,
          amount_tokens: trade.amount_tokens,
          ticker: this.ticker,
        })
        .catch(() => undefined); // the trade stands; only its chat line is missing
    } catch (error) {
      this.closeReview(false);
      this.showError(explain(error, this.ticker));
      this.scheduleQuote();
    } finally {
      this.submitting = false;
      this.confirmButton.disabled = false;
      this.renderReviewState();
      await refreshWallet();
    }
  }

  private showError(text: string): void {
    this.errorBox.textContent = text;
    this.errorBox.hidden = !text;
  }
}
