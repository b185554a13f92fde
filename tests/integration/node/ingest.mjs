// A service written in Node.js with no factorstream code and no npm package: it builds
// CloudEvents by hand and posts them to the HTTP ingest with fetch, in structured, binary
// and batch mode. Prints one JSON line per request: {step, status, ids}.
import { randomUUID } from "node:crypto";

const ingest = process.env.INGEST;
const auth = { authorization: `Bearer ${process.env.CREDENTIAL}` };
const tenant = process.env.TENANT;

function event(subject) {
  return {
    specversion: "1.0",
    id: randomUUID(),
    source: "urn:example:node-login",
    type: "mfa.verification.succeeded",
    time: new Date().toISOString(),
    subject,
    datacontenttype: "application/json",
    dataschema: "urn:factorstream:schema:mfa.verification.succeeded:v1",
    tenant,
    partitionkey: `${tenant}/${subject}`,
    correlationid: randomUUID(),
    comexamplerelease: "2026.12", // an extension attribute of ours, not the contract's
    data: { factor: "totp" },
  };
}

async function post(step, headers, body, ids) {
  const answer = await fetch(`${ingest}/v1/events`, { method: "POST", headers: { ...auth, ...headers }, body });
  console.log(JSON.stringify({ step, status: answer.status, ids, answer: await answer.json() }));
}

const one = event("node-1");
await post("structured", { "content-type": "application/cloudevents+json" }, JSON.stringify(one), [one.id]);

const two = event("node-2");
const { data, datacontenttype, ...attributes } = two;
const headers = { "content-type": datacontenttype };
for (const [name, value] of Object.entries(attributes)) headers[`ce-${name}`] = encodeURIComponent(value);
await post("binary", headers, JSON.stringify(data), [two.id]);

const three = [event("node-3"), event("node-4"), event("node-5")];
await post("batch", { "content-type": "application/cloudevents-batch+json" }, JSON.stringify(three), three.map((e) => e.id));

const foreign = { ...event("node-6"), tenant: "globex", partitionkey: "globex/node-6" };
await post("other tenant", { "content-type": "application/cloudevents+json" }, JSON.stringify(foreign), [foreign.id]);
