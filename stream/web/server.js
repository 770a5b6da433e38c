// Requests to the codec-stream server that serves this page: a server that cannot be reached is said to be
// unreachable, in words (found from outside: "g.sscb: Failed to fetch" once the server had stopped).

/** `fetch`, with a network failure (no response at all: fetch's TypeError) as an Error that says what happened. */
export async function fetchFromServer(url, options) {
  try {
    return await fetch(url, options);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    throw new Error('the codec-stream server is not reachable (stopped?)');
  }
}
