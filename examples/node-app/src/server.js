// A tiny app: prints what its dependencies compute, or serves it over HTTP with --serve.
const ms = require("ms");
const isNumber = require("is-number");
const http = require("node:http");

const message = `kiln node app: 2 days is ${ms("2 days")} ms; is-number(42) = ${isNumber(42)}`;

if (process.argv.includes("--serve")) {
  http.createServer((_req, res) => res.end(`${message}\n`)).listen(8080, () => console.log("listening on 8080"));
} else {
  console.log(message);
}
