// Tips on the watch page: an amount and a message (POST /tips; the server posts the `tip` chat line and emits
// `tip_received`), and the top-tippers list, re-read whenever a tip reaches this streamer.

import { api, apiOr, enc } from "./api";
import { currentWallet, onWallet, openAccountMenu, refreshWallet, walletViewer } from "./account";
import type { ChatPanel } from "./chat";
import { avatar, byId, el } from "./dom";
import { onViewer } from "./identity";
import { parseUnits, SOL_DECIMALS, solText } from "./money";
import { explain } from "./trade";

interface Tipper {
  user_id: string;
  username: string;
  total_amount: number;
  tip_count: number;
  rank: number;
}

interface TipRecord {
  tx_hash: string;
  amount_sol: number;
}

const PRESETS = ["0.05", "0.1", "0.5", "1"];
const REFRESH_DELAY_MS = 200;

export class TipPanel {
  private readonly form = byId<HTMLFormElement>("tip-form");
  private readonly amount = byId<HTMLInputElement>("tip-amount");
  private readonly message = byId<HTMLInputElement>("tip-message");
  private readonly send = byId<HTMLButtonElement>("tip-send");
  private readonly errorBox = byId("tip-error");
  private readonly result = byId("tip-result");
  private sending = false;
  private refreshTimer = 0;

  constructor(
    private readonly streamerId: string,
    private readonly streamerName: string,
    chat: ChatPanel,
  ) {
    byId("tip-quick").replaceChildren(
      ...PRESETS.map((value) => {
        const chip = el("button", { class: "chip", text: `${value} SOL`, attrs: { type: "button" } });
        chip.addEventListener("click", () => {
          this.amount.value = value;
          this.amount.focus();
        });
        return chip;
      }),
    );
    this.send.dataset.opensAccount = "";
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.submit();
    });
    this.amount.addEventListener("input", () => {
      this.showError("");
      this.result.hidden = true;
    });
    onWallet(() => this.renderBalance());
    onViewer(() => this.renderBalance());
    chat.on<{ receiver_id?: string }>("tip_received", (tip) => {
      if (tip && tip.receiver_id === this.streamerId) this.scheduleTippers();
    });
    chat.onReconnect(() => this.scheduleTippers());
    this.renderBalance();
    void this.loadTippers();
  }

  private renderBalance(): void {
    const wallet = currentWallet();
    const signed = walletViewer() !== null;
    byId("tip-balance").textContent = !signed
      ? "Sign in with a wallet to tip."
      : wallet
        ? `Balance: ${solText(wallet.sol_amount)}`
        : "Balance: …";
    if (!this.sending) this.send.textContent = signed ? `Send tip` : "Sign in to tip";
  }

  private async submit(): Promise<void> {
    const me = walletViewer();
    if (!me) {
      openAccountMenu();
      return;
    }
    if (this.sending) return;
    const lamports = parseUnits(this.amount.value, SOL_DECIMALS);
    if (lamports === null || lamports <= 0n) {
      this.showError("Enter an amount of SOL greater than zero, with at most 9 decimals.");
      return;
    }
    const balance = BigInt(currentWallet()?.sol ?? "0");
    if (lamports > balance) {
      this.showError("Not enough SOL in your wallet for this tip.");
      return;
    }
    this.sending = true;
    this.send.disabled = true;
    this.send.textContent = "Sending…";
    this.showError("");
    this.result.hidden = true;
    try {
      const message = this.message.value.trim();
      const body: Record<string, string> = { receiver_id: this.streamerId, lamports: lamports.toString() };
      if (message) body.message = message;
      const tip = await api<TipRecord>("/tips", { method: "POST", body, token: me.token });
      this.message.value = "";
      this.result.textContent = `You tipped ${this.streamerName} ${solText(tip.amount_sol)}. Thank you!`;
      this.result.hidden = false;
      this.scheduleTippers();
    } catch (error) {
      this.showError(explain(error, "", "tip"));
    } finally {
      this.sending = false;
      this.send.disabled = false;
      this.renderBalance();
      await refreshWallet();
    }
  }

  private showError(text: string): void {
    this.errorBox.textContent = text;
    this.errorBox.hidden = !text;
  }

  private scheduleTippers(): void {
    window.clearTimeout(this.refreshTimer);
    this.refreshTimer = window.setTimeout(() => void this.loadTippers(), REFRESH_DELAY_MS);
  }

  private async loadTippers(): Promise<void> {
    const page = await apiOr<{ tippers: Tipper[] } | null>(`/chat/top-tippers?streamer_id=${enc(this.streamerId)}`, null);
    if (!page) return;
    const list = byId("tippers-list");
    byId("tippers-empty").hidden = page.tippers.length > 0;
    list.replaceChildren(
      ...page.tippers.slice(0, 5).map((tipper) =>
        el(
          "li",
          { class: "tipper", dataset: { rank: String(tipper.rank), user: tipper.user_id } },
          el("span", { class: "tipper-rank", text: String(tipper.rank) }),
          avatar(tipper.username, null, "sm"),
          el("span", { class: "tipper-name", text: tipper.username }),
          el("span", { class: "tipper-total", text: solText(tipper.total_amount) }),
        ),
      ),
    );
  }
}
