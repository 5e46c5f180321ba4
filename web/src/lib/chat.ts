// Live chat over Socket.IO (API.md "Socket.IO"): history from REST, then the streamer's room. Every line is
// built from text nodes, so what a viewer or agent types is shown as typed and never becomes markup.

import { io, type Socket } from "socket.io-client";

import { api, apiOr, enc, type Comment, type Pinned } from "./api";
import { avatar, byId, el, icon, PIN_ICON } from "./dom";
import { chatTime } from "./format";
import { solText, tokenText } from "./money";
import { NAME_RE, onViewer, rename, viewer, type Viewer } from "./identity";

const MAX_LINES = 300;
const NAME_COLORS = ["#b69cff", "#ff8fb1", "#5fe0c6", "#ffc55c", "#7ab8ff", "#ff9a76", "#d59cff", "#6ee7b7"];

function nameColor(name: string): string {
  let hash = 7;
  for (let i = 0; i < name.length; i += 1) hash = (hash * 33 + name.charCodeAt(i)) >>> 0;
  return NAME_COLORS[hash % NAME_COLORS.length];
}

export interface ChatOptions {
  streamerId: string;
  streamerName: string;
  sessionId: string | null;
  onSessionStarted?: (payload: Record<string, unknown>) => void;
  onFollowed?: (payload: Record<string, unknown>) => void;
}

interface ModerationEvent {
  type: string;
  chat_event_id?: string;
  session_id?: string | null;
  user_id?: string;
  username?: string;
  streamer_id?: string;
}

/** A trade the viewer made, to announce in the chat (the server checks it against the ledger). */
export interface TradeAnnouncement {
  tx_hash: string;
  side: "buy" | "sell";
  amount_sol: number;
  amount_tokens: number;
  ticker: string;
}

/** "bought 1.2M $LIVE for 0.5 SOL": the text of a trade line, from its ledger-confirmed trade_data. */
export function tradeSummary(side: string, tokens: number, ticker: string, sol: number): string {
  return `${side === "sell" ? "sold" : "bought"} ${tokenText(tokens, ticker)} for ${solText(sol)}`;
}

function numeric(value: unknown): number {
  const number = typeof value === "number" ? value : Number(value);
  return Number.isFinite(number) ? number : 0;
}

export class ChatPanel {
  private readonly socket: Socket;
  private readonly log = byId<HTMLOListElement>("chat-log");
  private readonly status = byId("chat-status");
  private readonly form = byId<HTMLFormElement>("chat-form");
  private readonly input = byId<HTMLInputElement>("chat-input");
  private readonly send = byId<HTMLButtonElement>("chat-send");
  private readonly jump = byId<HTMLButtonElement>("chat-jump");
  private readonly pinnedBox = byId("chat-pinned");
  private readonly lines = new Map<string, HTMLElement>();
  private sessionId: string | null;
  private me: Viewer | null = null;
  private stickToBottom = true;
  private sending = false;
  private muted = false;
  private readonly extraRooms = new Set<string>();

  constructor(private readonly options: ChatOptions) {
    this.sessionId = options.sessionId;
    this.socket = io({ path: "/socket.io/", query: { "Client-Type": "web" }, reconnectionDelayMax: 5000 });
    this.wireSocket();
    this.wireForm();
    this.wireIdentity();
    this.log.addEventListener("scroll", () => {
      const gap = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight;
      this.stickToBottom = gap < 40;
      if (this.stickToBottom) this.jump.hidden = true;
    });
    this.jump.addEventListener("click", () => this.scrollToEnd());
    void this.loadHistory();
    void this.loadPinned();
  }

  /** The streamer went live with a new session: its pinned message lives in a new room. */
  setSession(sessionId: string | null): void {
    if (sessionId === this.sessionId) return;
    const old = this.sessionId;
    this.sessionId = sessionId;
    if (this.socket.connected) {
      if (old) this.socket.emit("leaveRoom", { roomId: `${this.options.streamerId}/${old}` });
      if (sessionId) this.socket.emit("joinRoom", { roomId: `${this.options.streamerId}/${sessionId}` });
    }
    this.showPinned(null);
    void this.loadPinned();
  }

  private rooms(): string[] {
    const id = this.options.streamerId;
    const rooms = [id, `live_${id}`, ...this.extraRooms];
    if (this.sessionId) rooms.push(`${id}/${this.sessionId}`);
    return rooms;
  }

  /** Another room on the chat's connection (the token panel listens to `trades_<address>`). */
  join(room: string): void {
    if (this.extraRooms.has(room)) return;
    this.extraRooms.add(room);
    if (this.socket.connected) this.socket.emit("joinRoom", { roomId: room });
  }

  /** Listen to a server event on the chat's connection. */
  on<T>(event: string, handler: (payload: T) => void): void {
    this.socket.on(event, handler);
  }

  /** Called when the socket reconnects, so panels fed by events can catch up on what they missed. */
  onReconnect(handler: () => void): void {
    this.socket.io.on("reconnect", handler);
  }

  /** Post the viewer's trade as a `trade` chat line; the server only accepts a real trade of this viewer. */
  async announceTrade(trade: TradeAnnouncement): Promise<void> {
    const me = await viewer();
    const answer = (await this.socket.timeout(8000).emitWithAck("message", {
      type: "trade",
      session_id: this.sessionId,
      streamer_id: this.options.streamerId,
      sender_token: me.token,
      sender_user_id: me.user_id,
      sender_username: me.username,
      text: tradeSummary(trade.side, trade.amount_tokens, trade.ticker, trade.amount_sol),
      timestamp: new Date().toISOString(),
      trade_data: { amount: trade.amount_sol, type: trade.side, tx_hash: trade.tx_hash },
    })) as Partial<Comment> & { error?: string };
    if (answer && answer.chat_event_id && !answer.error) this.add(answer as Comment);
  }

  private wireSocket(): void {
    const socket = this.socket;
    socket.on("connect", () => {
      for (const roomId of this.rooms()) socket.emit("joinRoom", { roomId });
      this.setStatus("connected", "connected");
      this.updateControls();
      void this.loadHistory(); // whatever was said while the connection was down
    });
    socket.on("disconnect", () => {
      this.setStatus("reconnecting…", "offline");
      this.updateControls();
    });
    socket.on("connect_error", () => {
      this.setStatus("reconnecting…", "offline");
      this.updateControls();
    });
    socket.on("message", (payload: Comment & ModerationEvent) => this.onMessage(payload));
    socket.on("pinned", (payload: Pinned) => {
      if (payload.streamer_id === this.options.streamerId) this.showPinned(payload.pinned ? payload.message : null);
    });
    socket.on("session_started", (payload: Record<string, unknown>) => this.options.onSessionStarted?.(payload));
    socket.on("user_followed", (payload: Record<string, unknown>) => this.options.onFollowed?.(payload));
    socket.on("error", (payload: { error?: string }) => {
      this.system(payload && typeof payload.error === "string" ? payload.error : "the chat server refused that");
    });
  }

  private setStatus(text: string, state: string): void {
    this.status.textContent = text;
    this.status.dataset.state = state;
    this.log.closest(".chat")?.setAttribute("data-realtime", state);
  }

  private onMessage(payload: Comment & ModerationEvent): void {
    if (!payload || (payload.streamer_id && payload.streamer_id !== this.options.streamerId)) return;
    switch (payload.type) {
      case "delete":
        if (payload.chat_event_id) this.remove(payload.chat_event_id);
        return;
      case "delete_all":
        for (const [id, line] of this.lines) {
          if (!payload.session_id || line.dataset.session === payload.session_id) this.remove(id);
        }
        this.system("The chat was cleared by the streamer.");
        return;
      case "jail":
        this.system(`${payload.username ?? "A viewer"} was muted by the streamer.`);
        if (this.me && payload.user_id === this.me.user_id) this.setMuted(true);
        return;
      case "unjail":
        this.system(`${payload.username ?? "A viewer"} can chat again.`);
        if (this.me && payload.user_id === this.me.user_id) this.setMuted(false);
        return;
      default:
        this.add(payload);
    }
  }

  private async loadHistory(): Promise<void> {
    const page = await apiOr<{ chats: Comment[] }>(`/chat/?streamer_id=${enc(this.options.streamerId)}&limit=50`, {
      chats: [],
    });
    const ordered = [...page.chats].reverse();
    for (const comment of ordered) this.add(comment);
    if (this.lines.size === 0 && !this.log.querySelector(".chat-empty")) {
      this.log.append(el("li", { class: "chat-empty", text: "No messages yet. Say hello!" }));
    }
    this.scrollToEnd();
  }

  private async loadPinned(): Promise<void> {
    if (!this.sessionId) return;
    const pinned = await apiOr<Pinned | null>(`/sessions/${enc(this.sessionId)}/pinned`, null);
    if (pinned && pinned.pinned && pinned.session_id === this.sessionId) this.showPinned(pinned.message);
  }

  private showPinned(message: Comment | null): void {
    if (!message) {
      this.pinnedBox.hidden = true;
      this.pinnedBox.replaceChildren();
      return;
    }
    this.pinnedBox.replaceChildren(
      icon(PIN_ICON, "pin-icon"),
      el(
        "div",
        { class: "pin-body" },
        el("span", { class: "pin-label", text: "Pinned" }),
        el(
          "p",
          { class: "pin-text" },
          el("strong", { text: message.sender_username }),
          " ",
          el("span", { text: message.text }),
        ),
      ),
    );
    this.pinnedBox.hidden = false;
  }

  private add(comment: Comment): void {
    const id = String(comment.chat_event_id ?? comment._id ?? "");
    if (!id || this.lines.has(id)) return;
    this.log.querySelector(".chat-empty")?.remove();
    const line = this.render(comment);
    line.dataset.id = id;
    if (comment.session_id) line.dataset.session = comment.session_id;
    // Ids grow with time: keep the log in id order, since a live message can overtake the history request.
    let after: Element | null = null;
    let firstWithId: Element | null = null;
    for (let node = this.log.lastElementChild; node; node = node.previousElementSibling) {
      const other = (node as HTMLElement).dataset.id;
      if (!other) continue;
      firstWithId = node;
      if (Number(other) < Number(id)) {
        after = node;
        break;
      }
    }
    if (after) after.after(line);
    else if (firstWithId) firstWithId.before(line);
    else this.log.append(line);
    this.lines.set(id, line);
    while (this.lines.size > MAX_LINES) {
      const oldest = this.log.querySelector<HTMLElement>("li[data-id]");
      if (!oldest?.dataset.id) break;
      this.remove(oldest.dataset.id);
    }
    if (this.stickToBottom) this.scrollToEnd();
    else this.jump.hidden = false;
  }

  private render(comment: Comment): HTMLElement {
    const name = comment.sender_username || "someone";
    const isStreamer = comment.sender_user_id === this.options.streamerId;
    const isMine = this.me !== null && comment.sender_user_id === this.me.user_id;
    const classes = ["chat-line", `chat-${comment.type || "message"}`];
    if (isStreamer) classes.push("from-streamer");
    if (isMine) classes.push("mine");
    const who = el("span", { class: "chat-name", text: name });
    who.style.color = isStreamer ? "" : nameColor(name);
    const parts: (Node | string)[] = [el("time", { class: "chat-time", text: chatTime(comment.timestamp) })];
    if (comment.type === "tip" || comment.type === "trade") return this.renderMoney(comment, classes, parts, who);
    if (isStreamer) parts.push(el("span", { class: "chat-badge", text: "STREAMER" }));
    if (comment.type === "system") {
      parts.push(el("span", { class: "chat-text", text: comment.text }));
    } else {
      parts.push(who, el("span", { class: "chat-sep", text: ": " }), el("span", { class: "chat-text", text: comment.text }));
    }
    return el("li", { class: classes.join(" ") }, ...parts);
  }

  /** Tips and trades read as events, not as chat: a coloured card with the amount from the ledger's data. */
  private renderMoney(comment: Comment, classes: string[], parts: (Node | string)[], who: HTMLElement): HTMLElement {
    const line = el("li", { class: [...classes, "chat-money"].join(" ") });
    let summary: string;
    let badge: string;
    if (comment.type === "tip") {
      const amount = numeric(comment.tip_data?.amount);
      badge = "TIP";
      summary = ` tipped ${solText(amount)}`;
      const defaultText = `tipped ${amount} SOL`;
      const message = comment.text && comment.text !== defaultText ? comment.text : "";
      parts.push(el("span", { class: "money-badge", text: badge }), who, el("strong", { class: "money-amount", text: summary }));
      line.append(...parts);
      if (message) line.append(el("p", { class: "chat-text money-message", text: message }));
      return line;
    }
    const data = (comment.trade_data ?? {}) as Record<string, unknown>;
    const side = data.type === "sell" ? "sell" : "buy";
    badge = side === "sell" ? "SELL" : "BUY";
    summary = ` ${tradeSummary(side, numeric(data.amount_tokens), String(data.token_ticker ?? ""), numeric(data.amount))}`;
    line.dataset.side = side;
    parts.push(el("span", { class: "money-badge", text: badge }), who, el("span", { class: "money-amount", text: summary }));
    line.append(...parts);
    return line;
  }

  private remove(id: string): void {
    const line = this.lines.get(id);
    if (line) {
      line.remove();
      this.lines.delete(id);
    }
  }

  private system(text: string): void {
    this.log.querySelector(".chat-empty")?.remove();
    this.log.append(el("li", { class: "chat-line chat-notice", text }));
    if (this.stickToBottom) this.scrollToEnd();
  }

  private scrollToEnd(): void {
    this.log.scrollTop = this.log.scrollHeight;
    this.stickToBottom = true;
    this.jump.hidden = true;
  }

  private setMuted(muted: boolean): void {
    this.muted = muted;
    this.updateControls();
  }

  private updateControls(): void {
    const ready = this.socket.connected && this.me !== null && !this.muted;
    this.input.disabled = !ready;
    this.send.disabled = !ready || this.sending;
    this.input.placeholder = this.muted
      ? "You were muted by the streamer"
      : !this.me
        ? "Joining chat…"
        : this.socket.connected
          ? "Send a message"
          : "Reconnecting…";
  }

  private wireForm(): void {
    this.form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = this.input.value.trim();
      if (!text || !this.me || this.sending) return;
      this.sending = true;
      this.updateControls();
      const me = this.me;
      try {
        const answer = (await this.socket.timeout(8000).emitWithAck("message", {
          type: "message",
          session_id: this.sessionId,
          streamer_id: this.options.streamerId,
          sender_token: me.token,
          sender_user_id: me.user_id,
          sender_username: me.username,
          text,
          timestamp: new Date().toISOString(),
        })) as Partial<Comment> & { error?: string };
        if (!answer || !answer.error) {
          this.input.value = "";
          if (answer && answer.chat_event_id) this.add(answer as Comment); // the broadcast may come later
        }
      } catch {
        this.system("The message could not be sent; check your connection and try again.");
      } finally {
        this.sending = false;
        this.updateControls();
        this.input.focus();
      }
    });
  }

  private wireIdentity(): void {
    const nameButton = byId<HTMLButtonElement>("chat-name");
    const nameForm = byId<HTMLFormElement>("name-form");
    const nameInput = byId<HTMLInputElement>("name-input");
    const nameError = byId("name-error");
    const show = (me: Viewer): void => {
      if (this.me && this.me.user_id !== me.user_id) this.muted = false; // another account: its own mute state
      this.me = me;
      nameButton.replaceChildren(avatar(me.username, null, "sm"), el("span", { text: me.username }));
      nameButton.disabled = false;
      this.updateControls();
    };
    onViewer(show);
    viewer().then(show, () => {
      this.system("Could not create your chat identity; reload the page to try again.");
    });
    nameButton.addEventListener("click", () => {
      nameForm.hidden = false;
      nameInput.value = this.me?.username ?? "";
      nameError.textContent = "";
      nameInput.focus();
      nameInput.select();
    });
    byId("name-cancel").addEventListener("click", () => {
      nameForm.hidden = true;
    });
    nameForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const wanted = nameInput.value.trim();
      if (!NAME_RE.test(wanted)) {
        nameError.textContent = "3–32 letters, digits, _ or -";
        return;
      }
      try {
        await rename(wanted);
        nameForm.hidden = true;
      } catch (error) {
        nameError.textContent = error instanceof Error ? error.message : "that name cannot be used";
      }
    });
  }
}

/** Follow / unfollow with the viewer's token (PUT/DELETE /users/me/following/:id). */
export async function followState(username: string): Promise<boolean> {
  const me = await viewer();
  const answer = await api<{ following: boolean }>(`/users/me/following/${enc(username)}`, { token: me.token });
  return answer.following;
}

export async function setFollowing(targetId: string, follow: boolean): Promise<{ following: boolean; followers_count: number }> {
  const me = await viewer();
  return api(`/users/me/following/${enc(targetId)}`, { method: follow ? "PUT" : "DELETE", token: me.token });
}
