// Solana wallets through the Wallet Standard (Phantom, Solflare, Backpack and any other wallet that registers
// itself with the `wallet-standard:register-wallet` protocol): connect, then sign the server's nonce message
// with `solana:signMessage` and trade the signature for a platform JWT (API.md "Viewer identity").

import { SolanaSignMessage, type SolanaSignMessageFeature } from "@solana/wallet-standard-features";
import { getWallets } from "@wallet-standard/app";
import type { Wallet, WalletAccount } from "@wallet-standard/base";
import {
  StandardConnect,
  StandardDisconnect,
  type StandardConnectFeature,
  type StandardDisconnectFeature,
} from "@wallet-standard/features";
import bs58 from "bs58";

import { api } from "./api";
import { signedInWithWallet, type Viewer } from "./identity";

let registry: ReturnType<typeof getWallets> | null = null;

function wallets(): ReturnType<typeof getWallets> {
  // getWallets() announces `wallet-standard:app-ready`; wallets that loaded earlier register in answer.
  registry ??= getWallets();
  return registry;
}

function usable(wallet: Wallet): boolean {
  return (
    StandardConnect in wallet.features &&
    SolanaSignMessage in wallet.features &&
    wallet.chains.some((chain) => chain.startsWith("solana:"))
  );
}

/** Wallets that can sign us in, in the order they registered. */
export function solanaWallets(): Wallet[] {
  return wallets().get().filter(usable);
}

/** Called whenever a wallet registers or goes away (extensions may load after the page). */
export function onWalletsChanged(listener: () => void): void {
  wallets().on("register", listener);
  wallets().on("unregister", listener);
}

export class WalletError extends Error {}

function pickAccount(accounts: readonly WalletAccount[]): WalletAccount {
  const account = accounts.find((a) => a.features.includes(SolanaSignMessage)) ?? accounts[0];
  if (!account) throw new WalletError("The wallet did not share an account.");
  return account;
}

/** Connect, sign the nonce, and become that wallet's viewer. Errors are WalletError or ApiError. */
export async function signInWith(wallet: Wallet): Promise<Viewer> {
  const connect = (wallet.features as StandardConnectFeature)[StandardConnect].connect;
  const sign = (wallet.features as SolanaSignMessageFeature)[SolanaSignMessage].signMessage;
  let connected: readonly WalletAccount[];
  try {
    connected = (await connect()).accounts;
  } catch {
    throw new WalletError(`${wallet.name} did not connect (the request was closed or refused).`);
  }
  const account = pickAccount(connected.length ? connected : wallet.accounts);
  const issued = await api<{ nonce: string; message: string }>("/auth/nonce", {
    method: "POST",
    body: { wallet_address: account.address },
  });
  const message = new TextEncoder().encode(issued.message);
  let signature: Uint8Array;
  try {
    const [output] = await sign({ account, message });
    if (!output) throw new Error("no signature");
    signature = output.signature;
  } catch {
    throw new WalletError(`${wallet.name} did not sign the sign-in message.`);
  }
  const answer = await api<{ token: string; user: { user_id: string; username: string } }>("/auth/wallet", {
    method: "POST",
    body: { wallet_address: account.address, signature: bs58.encode(signature), nonce: issued.nonce },
  });
  return signedInWithWallet(answer.token, answer.user, account.address, wallet.name);
}

/** Tell the wallet we are done, when it supports that (the platform session ends in identity.signOut). */
export async function disconnectWallet(name: string | undefined): Promise<void> {
  const wallet = solanaWallets().find((w) => w.name === name);
  const feature = wallet ? (wallet.features as Partial<StandardDisconnectFeature>)[StandardDisconnect] : undefined;
  try {
    await feature?.disconnect();
  } catch {
    // the wallet refused to forget us: the platform session is gone anyway
  }
}
