// The public HTTP API (/api/v1) and the signed-in session. Errors arrive as RFC 9457 problem documents.

const TOKEN_KEY = "appointments.token";

export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem?.code ?? null;
    this.problem = problem ?? {};
    this.retryAfter = retryAfter;
  }
}

export const session = {
  get token() { return localStorage.getItem(TOKEN_KEY); },
  set token(value) { value ? localStorage.setItem(TOKEN_KEY, value) : localStorage.removeItem(TOKEN_KEY); },
  profile: null,
};

export async function call(method, path, { body, query, headers = {} } = {}) {
  const url = new URL(`/api/v1${path}`, location.origin);
  for (const [name, value] of Object.entries(query ?? {})) if (value != null) url.searchParams.set(name, value);
  const sent = { Accept: "application/json", ...headers };
  if (session.token) sent.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) sent["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, { method, headers: sent, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, { title: "Offline", detail: "The server could not be reached. Check your connection and try again." });
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data, response.headers.get("Retry-After"));
  return data;
}

/** Every page of a list route, for the short lists a person looks at. */
export async function all(path, query = {}) {
  const items = [];
  let cursor = null;
  do {
    const page = await call("GET", path, { query: { ...query, limit: 200, cursor } });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

/** What to tell a person about a failed call, in words. */
export function explain(error) {
  if (!(error instanceof ApiError)) return `Something went wrong: ${error.message}`;
  if (error.status === 503) return `${error.message} Nothing was changed.`;
  if (error.status === 429) return `${error.message} Try again in ${error.retryAfter ?? "a few"} seconds.`;
  const fields = (error.problem.errors ?? []).map((e) => `${e.location.slice(1).join(".") || "input"}: ${e.message}`);
  return fields.length ? `${error.message} ${fields.join("; ")}.` : error.message;
}
