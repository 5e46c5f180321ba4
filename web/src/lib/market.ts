// The token panel of the watch page: price, 24 h change, market cap, volume, holders, bonding-curve progress, a
// price chart (lightweight-charts, loaded only on pages with a token) and the latest trades. Every `newtrade` on
// `trades_<address>` updates it at once; stats and holders are then re-read from the API.

import type { IChartApi, ISeriesApi, UTCTimestamp } from "lightweight-charts";

import { apiOr, enc, type TokenStats } from "./api";
import type { ChatPanel } from "./chat";
import { byId, el } from "./dom";
import { change, compact, timeAgo, usd } from "./format";
import { solText, tokenText } from "./money";

interface ChartPoint {
  time: string | null;
  price_sol: number;
  price_usd: number;
  side: string;
  amount_sol: number;
}

export interface ChartData {
  address: string;
  ticker: string;
  token_decimals: number;
  quote_decimals: number;
  sol_price_usd: number;
  price_sol: number;
  price_usd: number;
  holders: number;
  trade_count: number;
  graduated: boolean;
  points: ChartPoint[];
}

/** The `newtrade` Socket.IO event (API.md "Socket.IO"). */
export interface NewTrade {
  address: string;
  action: string;
  usdAmount: number;
  tokenTicker: string;
  solAmount: number;
  tokenAmount: number;
  txHash: string;
  trader: string;
  userId: string;
  priceSol: number;
  marketCapUsd: number;
  timestamp: string | null;
}

interface RecentTrade {
  is_buy: boolean;
  amount_sol: number;
  amount_tokens: number;
  tx_hash: string;
  timestamp: string;
}

const FEED_SIZE = 6;
const POLL_MS = 15_000;
const REFRESH_AFTER_TRADE_MS = 300;

function seconds(iso: string | null): number {
  const ms = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(ms) ? Math.floor(Date.now() / 1000) : Math.floor(ms / 1000);
}

export class TokenMarket {
  /** What the trade panel needs: spot price, decimals, whether the pool still trades. */
  priceSol = 0;
  tokenDecimals = 6;
  solPriceUsd = 150;
  graduated = false;
  ready = false;
  private chart: IChartApi | null = null;
  private series: ISeriesApi<"Area"> | null = null;
  private lastTime = 0;
  private tradeCount = 0;
  private volumeDay = 0;
  private refreshTimer = 0;
  private pollTimer = 0;
  private readonly feed = byId<HTMLOListElement>("trade-feed");
  private readonly seen = new Set<string>();
  private readonly tradeListeners = new Set<(trade: NewTrade) => void>();
  private readonly changeListeners = new Set<() => void>();

  constructor(
    private readonly address: string,
    private readonly ticker: string,
    chat: ChatPanel,
  ) {
    chat.join(`trades_${address}`);
    chat.on<NewTrade>("newtrade", (trade) => {
      if (trade && trade.address === this.address) this.applyTrade(trade);
    });
    chat.onReconnect(() => void this.refresh()); // trades made while the socket was down
  }

  onTrade(listener: (trade: NewTrade) => void): void {
    this.tradeListeners.add(listener);
  }

  /** Called after every refresh of price or pool state. */
  onChange(listener: () => void): void {
    this.changeListeners.add(listener);
  }

  async start(): Promise<void> {
    await Promise.all([this.refresh(), this.loadFeed()]);
  }

  /** Stats and chart from the API; the chart is drawn in full again (it is at most a few hundred points). */
  async refresh(): Promise<void> {
    window.clearTimeout(this.pollTimer);
    const path = enc(this.address);
    const [stats, chart] = await Promise.all([
      apiOr<TokenStats | null>(`/tokens/${path}/stats`, null),
      apiOr<ChartData | null>(`/tokens/${path}/chart?limit=500`, null),
    ]);
    if (stats) this.renderStats(stats);
    if (chart) {
      this.tokenDecimals = chart.token_decimals;
      this.solPriceUsd = chart.sol_price_usd;
      this.priceSol = chart.price_sol;
      this.graduated = chart.graduated;
      this.ready = true;
      byId("token-holders").textContent = compact(chart.holders);
      this.tradeCount = chart.trade_count;
      byId("token-trades").textContent = compact(chart.trade_count);
      await this.drawChart(chart.points);
    }
    for (const listener of this.changeListeners) listener();
    this.pollTimer = window.setTimeout(() => void this.refresh(), POLL_MS);
  }

  private renderStats(stats: TokenStats): void {
    byId("token-price").textContent = usd(stats.current_price);
    byId("token-mcap").textContent = usd(stats.market_cap);
    this.volumeDay = stats.volume?.["24h"] ?? 0;
    byId("token-volume").textContent = usd(this.volumeDay);
    const day = stats.growth?.["24h"] ?? 0;
    const changeNode = byId("token-change");
    changeNode.textContent = change(day);
    changeNode.dataset.trend = day > 0 ? "up" : day < 0 ? "down" : "flat";
    const progress = Math.max(0, Math.min(1, stats.bonding_progress ?? 0));
    const bar = byId("token-progress");
    bar.style.setProperty("--progress", `${(progress * 100).toFixed(1)}%`);
    bar.setAttribute("aria-valuenow", (progress * 100).toFixed(1));
    byId("token-progress-label").textContent = stats.graduated
      ? "Graduated: the bonding curve is complete"
      : `Bonding curve ${(progress * 100).toFixed(1)}% complete`;
    this.graduated = Boolean(stats.graduated);
    if (stats.price_sol) this.priceSol = stats.price_sol;
  }

  private async drawChart(points: ChartPoint[]): Promise<void> {
    const box = byId("token-chart");
    if (!this.chart) {
      const charts = await import("lightweight-charts");
      this.chart = charts.createChart(box, {
        autoSize: true,
        layout: {
          background: { type: charts.ColorType.Solid, color: "transparent" },
          textColor: "#9797aa",
          fontFamily: getComputedStyle(document.body).fontFamily,
          fontSize: 11,
        },
        grid: { vertLines: { color: "rgba(255,255,255,0.04)" }, horzLines: { color: "rgba(255,255,255,0.04)" } },
        rightPriceScale: { borderVisible: false },
        timeScale: { borderVisible: false, timeVisible: true, secondsVisible: false },
        crosshair: { horzLine: { labelBackgroundColor: "#7c3aed" }, vertLine: { labelBackgroundColor: "#7c3aed" } },
        handleScroll: false,
        handleScale: false,
      });
      this.series = this.chart.addSeries(charts.AreaSeries, {
        lineColor: "#a78bfa",
        topColor: "rgba(139, 92, 246, 0.35)",
        bottomColor: "rgba(139, 92, 246, 0.02)",
        lineWidth: 2,
        priceFormat: { type: "custom", formatter: (price: number) => usd(price), minMove: 1e-12, base: 1e12 },
      });
    }
    // One value a second (the chart's time resolution): the last trade of that second wins.
    const bySecond = new Map<number, number>();
    for (const point of points) bySecond.set(seconds(point.time), point.price_usd);
    const data = [...bySecond.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([time, value]) => ({ time: time as UTCTimestamp, value }));
    this.series?.setData(data);
    // Minutes alone label every tick the same while all the trades are a few minutes old.
    const span = data.length > 1 ? data[data.length - 1].time - data[0].time : 0;
    this.chart.applyOptions({ timeScale: { secondsVisible: span < 600 } });
    this.lastTime = data.length ? data[data.length - 1].time : 0;
    byId("chart-empty").hidden = points.some((p) => p.side !== "start");
    this.chart.timeScale().fitContent();
  }

  private addPoint(iso: string | null, priceUsd: number): void {
    if (!this.series) return;
    // Never before the last point (the chart refuses that): a clock a second off only merges two points.
    const time = Math.max(seconds(iso), this.lastTime) as UTCTimestamp;
    this.series.update({ time, value: priceUsd });
    this.lastTime = time;
    byId("chart-empty").hidden = true;
    this.chart?.timeScale().fitContent();
  }

  private applyTrade(trade: NewTrade): void {
    if (this.seen.has(trade.txHash)) return;
    this.priceSol = trade.priceSol;
    const priceUsd = trade.priceSol * this.solPriceUsd;
    byId("token-price").textContent = usd(priceUsd);
    byId("token-mcap").textContent = usd(trade.marketCapUsd);
    // Counted here at once; the refresh below brings the server's figures (and the holder count) a moment later.
    this.tradeCount += 1;
    this.volumeDay += trade.usdAmount;
    byId("token-trades").textContent = compact(this.tradeCount);
    byId("token-volume").textContent = usd(this.volumeDay);
    this.addPoint(trade.timestamp, priceUsd);
    this.prependFeed({
      is_buy: trade.action === "buy",
      amount_sol: trade.solAmount,
      amount_tokens: trade.tokenAmount,
      tx_hash: trade.txHash,
      timestamp: trade.timestamp ?? new Date().toISOString(),
    });
    for (const listener of this.tradeListeners) listener(trade);
    for (const listener of this.changeListeners) listener();
    // Volume, 24 h change, holders and progress come from the API a moment later.
    window.clearTimeout(this.refreshTimer);
    this.refreshTimer = window.setTimeout(() => void this.refresh(), REFRESH_AFTER_TRADE_MS);
  }

  private async loadFeed(): Promise<void> {
    const page = await apiOr<{ trades: RecentTrade[] } | null>(
      `/trades/recent/${enc(this.address)}/?limit=${FEED_SIZE}`,
      null,
    );
    if (!page) return;
    for (const trade of [...page.trades].reverse()) this.prependFeed(trade);
  }

  private prependFeed(trade: RecentTrade): void {
    if (this.seen.has(trade.tx_hash)) return;
    this.seen.add(trade.tx_hash);
    this.feed.querySelector(".feed-empty")?.remove();
    const side = trade.is_buy ? "buy" : "sell";
    const row = el(
      "li",
      { class: "feed-row", dataset: { side, tx: trade.tx_hash } },
      el("span", { class: "feed-side", text: trade.is_buy ? "Buy" : "Sell" }),
      el("span", { class: "feed-sol", text: solText(trade.amount_sol) }),
      el("span", { class: "feed-tokens", text: tokenText(trade.amount_tokens, this.ticker) }),
      el("time", { class: "feed-time", text: timeAgo(trade.timestamp), attrs: { datetime: trade.timestamp } }),
    );
    this.feed.prepend(row);
    while (this.feed.children.length > FEED_SIZE) this.feed.lastElementChild?.remove();
  }
}
