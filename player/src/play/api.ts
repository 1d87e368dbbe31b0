// The page's only network peer: its own `lucid-play serve`, same origin, sealed bytes only.

const TIMEOUT_MS = 30_000;

export interface SessionInfo {
  namespace: string;
  name: string;
  uid: string;
  source: string;
}

export interface StoredChunk {
  seq: number;
  size: number;
}

export class ApiError extends Error {}

async function get(path: string): Promise<Response | null> {
  let response: Response;
  try {
    response = await fetch(path, { signal: AbortSignal.timeout(TIMEOUT_MS), cache: "no-store" });
  } catch (e) {
    throw new ApiError(`the player's server does not answer (${path}): ${(e as Error).message}`);
  }
  if (response.status === 404) return null;
  if (!response.ok) {
    let detail = response.statusText;
    try {
      detail = ((await response.json()) as { error?: string }).error ?? detail;
    } catch {
      // not JSON: keep the status text
    }
    throw new ApiError(`${path}: ${response.status} ${detail}`);
  }
  return response;
}

export class Api {
  async session(): Promise<SessionInfo> {
    const r = await get("api/session");
    if (r === null) throw new ApiError("api/session: not found");
    return (await r.json()) as SessionInfo;
  }

  async manifest(): Promise<string | null> {
    const r = await get("api/manifest");
    return r === null ? null : r.text();
  }

  async chunks(): Promise<StoredChunk[]> {
    const r = await get("api/chunks");
    if (r === null) throw new ApiError("api/chunks: not found");
    return ((await r.json()) as { chunks: StoredChunk[] }).chunks;
  }

  async chunk(seq: number): Promise<Uint8Array | null> {
    const r = await get(`api/chunks/${seq}`);
    return r === null ? null : new Uint8Array(await r.arrayBuffer());
  }
}
