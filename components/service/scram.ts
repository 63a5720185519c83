/**
 * A login's SCRAM-SHA-256 verifier (RFC 5802, RFC 7677; PostgreSQL's `pg_authid` form), computed
 * from its generated password. A pooled login's role is created with it, and its pooler's auth
 * file holds the same one: PgBouncer then checks a client without the password and logs in to
 * the server with the client's proof (SCRAM pass-through needs the server's verifier exactly,
 * salt included), so no pooler file holds a password (docs/pooling.md). The salt comes from the
 * password and the login (HMAC-SHA-256), so the verifier is the same on every run: the role is not
 * updated by each `up`, and the generated passwords are 40 random characters.
 */
import { createHash, createHmac, pbkdf2Sync } from "node:crypto";

const ITERATIONS = 4096;

const hmac = (key: Buffer, text: string) => createHmac("sha256", key).update(text).digest();

export function scramVerifier(password: string, login: string): string {
  const salt = createHmac("sha256", password).update(`db-platform SCRAM salt of ${login}`).digest().subarray(0, 16);
  const salted = pbkdf2Sync(password.normalize("NFKC"), salt, ITERATIONS, 32, "sha256");
  const storedKey = createHash("sha256").update(hmac(salted, "Client Key")).digest();
  const serverKey = hmac(salted, "Server Key");
  return `SCRAM-SHA-256$${ITERATIONS}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}
