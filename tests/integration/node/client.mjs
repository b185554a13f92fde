// A relying party in Node.js with no factorstream code: it enrols TOTP for a person over
// the MFA service's HTTP API (codes from oathtool), steps up, receives the MFA assertion and
// verifies it with jose against the service's JWKS; then checks that jose refuses the same
// token tampered with, expired, for another audience, and re-signed with a key of its own.
//
// Environment: SERVICE (base URL, also the issuer), CREDENTIAL (a client credential),
// AUDIENCE (the client's audience), SUBJECT. Prints one JSON object per line.
import { execFileSync } from "node:child_process";
import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  generateKeyPair,
  jwtVerify,
  SignJWT,
  decodeJwt,
} from "jose";

const { SERVICE, CREDENTIAL, AUDIENCE, SUBJECT } = process.env;
const report = (step, fields) => console.log(JSON.stringify({ step, ...fields }));

async function call(method, path, body) {
  const response = await fetch(`${SERVICE}/v1/subjects/${SUBJECT}${path}`, {
    method,
    headers: { Authorization: `Bearer ${CREDENTIAL}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

function totp(secret, aheadSeconds = 0) {
  const args = ["--totp", "-b", secret];
  if (aheadSeconds) {
    const at = new Date(Date.now() + aheadSeconds * 1000).toISOString();
    args.push("--now", `${at.slice(0, 10)} ${at.slice(11, 19)} UTC`);
  }
  return execFileSync("oathtool", args, { encoding: "utf8" }).trim();
}

async function refusal(token, options) {
  try {
    await jwtVerify(token, jwks, { issuer: SERVICE, audience: AUDIENCE, ...options });
    return "accepted";
  } catch (error) {
    if (error instanceof errors.JOSEError) return error.code;
    throw error;
  }
}

const enrolment = await call("POST", "/totp/enrollments", { account_name: `${SUBJECT}@example.com` });
report("enrol", { status: enrolment.status });
const { secret, enrollment_id: enrollmentId } = enrolment.body;
const confirmed = await call("POST", `/totp/enrollments/${enrollmentId}/confirm`, { code: totp(secret) });
report("confirm", { status: confirmed.status });
// the confirming code's time step is spent: the next step's code signs in
const stepUp = await call("POST", "/totp/verify", { code: totp(secret, 30), correlationid: "node-1" });
report("verify", { status: stepUp.status, amr: stepUp.body.amr });
const token = stepUp.body.assertion;

const jwks = createRemoteJWKSet(new URL("/.well-known/jwks.json", SERVICE));
const { payload, protectedHeader } = await jwtVerify(token, jwks, {
  issuer: SERVICE,
  audience: AUDIENCE,
  algorithms: ["EdDSA"],
  maxTokenAge: "5 minutes",
});
report("jose", { alg: protectedHeader.alg, sub: payload.sub, tenant: payload.tenant, amr: payload.amr, acr: payload.acr });

const [head, body, signature] = token.split(".");
const claims = decodeJwt(token);
const forged = Buffer.from(JSON.stringify({ ...claims, sub: "admin" })).toString("base64url");
const tampered = `${head}.${forged}.${signature}`;
const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });
const resigned = await new SignJWT(claims)
  .setProtectedHeader({ alg: "EdDSA", kid: decodeProtectedHeader(token).kid })
  .sign(privateKey);
const later = new Date((claims.exp + 60) * 1000);
report("refused", {
  tampered: await refusal(tampered, {}),
  expired: await refusal(token, { currentDate: later }),
  wrong_audience: await refusal(token, { audience: "https://elsewhere.example" }),
  foreign_key: await refusal(resigned, {}),
});
console.log(JSON.stringify({ step: "token", token, tampered, resigned, body_chars: body.length }));
