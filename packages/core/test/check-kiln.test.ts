// kiln's own cache and size rules. The Dockerfiles from the seed articles (/work/shared/seeds)
// are quoted here: their bad orderings must be flagged and their corrected versions must pass.
import { describe, expect, it } from "vitest";
import { checkDockerfile, type Finding } from "../src/check/index.js";

const KILN_RULES = ["CopyAllBeforeDependencyInstall", "PackageCacheInSeparateLayer", "AptGetUpdateAlone", "AddInsteadOfCopy"];
const kiln = (src: string): Finding[] =>
  checkDockerfile(src, { file: "Dockerfile" }).findings.filter((f) => KILN_RULES.includes(f.rule));
const summary = (src: string): string[] => kiln(src).map((f) => `${f.range.startLine}:${f.rule}`);

describe("seed articles", () => {
  it("000: COPY ./ ./ before npm install is flagged, package.json first passes", () => {
    const bad = `FROM node:alpine

WORKDIR /usr/app

COPY ./ ./
RUN npm install

CMD ["npm", "start"]
`;
    const findings = kiln(bad);
    expect(findings.map((f) => `${f.range.startLine}:${f.rule}`)).toEqual(["6:CopyAllBeforeDependencyInstall"]);
    expect(findings[0]?.message).toBe(
      "'npm install' runs after 'COPY ./ ./' (line 5) copied the whole build context: any source change re-runs the install",
    );
    expect(findings[0]?.fix).toBe(
      "Copy only the dependency manifests before installing, then the rest:\n  COPY package.json package-lock.json ./\n  RUN npm install\n  COPY ./ ./",
    );
    const good = `FROM node:alpine

WORKDIR /usr/app

COPY ./package.json ./
RUN npm install
COPY ./ ./

CMD ["npm", "start"]
`;
    expect(summary(good)).toEqual([]);
  });

  it("001: manifests first and npm cache cleaned in the install's RUN passes", () => {
    const good = `FROM node:10.7.0-alpine

WORKDIR /usr/src/app

COPY package*.json /usr/src/app/

RUN npm install && \\
    npm cache clean -f

COPY . .

CMD ["/bin/bash", "/usr/src/app/init"]
`;
    expect(summary(good)).toEqual([]);
  });

  it("002: the ruby/node and go Dockerfiles, manifests first, pass", () => {
    const ruby = `FROM ruby:3.2.2

WORKDIR /app

COPY package.json .
RUN curl -sL https://deb.nodesource.com/setup_20.x | bash -
RUN apt-get install -y nodejs
RUN npm install

COPY Gemfile Gemfile.lock .
RUN bundle install

COPY . .

CMD ["rails", "server", "-b", "0.0.0.0"]
`;
    expect(summary(ruby)).toEqual([]);
    const go = `# syntax=docker/dockerfile:1
FROM golang:alpine
WORKDIR $GOPATH/src/

ARG cache_invalidator

COPY go.mod go.sum ./
RUN go mod download

COPY . .
RUN CGO_ENABLED=0 GOOS=linux go build -o /go/bin/webserver

ENTRYPOINT ["/go/bin/webserver"]
`;
    expect(checkDockerfile(go, { file: "Dockerfile" }).findings).toEqual([]);
    // The same with the download moved after COPY . . is flagged.
    const badGo = go.replace("COPY go.mod go.sum ./\nRUN go mod download\n\nCOPY . .\n", "COPY . .\nRUN go mod download\n");
    expect(summary(badGo)).toEqual(["8:CopyAllBeforeDependencyInstall"]);
    expect(kiln(badGo)[0]?.fix).toContain("COPY go.mod go.sum ./");
  });

  it("003: COPY . . before pip install -r requirements.txt is flagged", () => {
    const bad = `FROM python:3.9-slim
WORKDIR /usr/src/app
COPY . .
RUN pip install --no-cache-dir -r requirements.txt
`;
    const f = kiln(bad);
    expect(f.map((x) => `${x.range.startLine}:${x.rule}`)).toEqual(["4:CopyAllBeforeDependencyInstall"]);
    expect(f[0]?.fix).toContain("COPY requirements.txt ./\n  RUN pip install --no-cache-dir -r requirements.txt\n  COPY . .");
  });

  it("004: source copied before system and Python installs is flagged, the reordering passes", () => {
    const bad = `FROM python:3.7-buster

# copy the requirements file 
COPY requirements.txt /app

# create and set the working directory
RUN mkdir -p /app
WORKDIR /app

# copy the source code
COPY . /app

# install system dependencies
RUN apt-get update && apt-get install -y build-essential libpq-dev

# install Python dependencies
RUN pip install -r requirements.txt

# expose the port that the app will run on
EXPOSE 5000

# run the app
CMD ["python", "app.py"]
`;
    expect(summary(bad)).toEqual(["14:CopyAllBeforeDependencyInstall", "17:CopyAllBeforeDependencyInstall"]);
    const good = `FROM python:3.7-buster

# install system dependencies
RUN apt-get update && apt-get install -y build-essential libpq-dev

# copy the requirements file and install Python dependencies
COPY requirements.txt /app
RUN pip install -r requirements.txt

# create and set the working directory
RUN mkdir -p /app
WORKDIR /app

# copy the source code
COPY . /app

# expose the port that the app will run on
EXPOSE 5000

# run the app
CMD ["python", "app.py"]
`;
    expect(summary(good)).toEqual([]);
  });

  it("004: apt-get clean in its own RUN and a lone apt-get update are flagged; one RUN passes", () => {
    const bad = `FROM ubuntu:18.04-slim
RUN apt-get update 
RUN apt-get install -y curl 
RUN apt-get install -y dpkg-sig 
RUN apt-get clean 
`;
    const f = kiln(bad);
    expect(f.map((x) => `${x.range.startLine}:${x.rule}`)).toEqual(["2:AptGetUpdateAlone", "5:PackageCacheInSeparateLayer"]);
    expect(f[0]?.fix).toContain("RUN apt-get update && apt-get install -y curl");
    expect(f[1]?.message).toBe(
      "'apt-get clean' cleans the apt cache in its own layer (installed at line 4): the files still ship in the earlier layer",
    );
    expect(f[1]?.fix).toContain("RUN apt-get install -y dpkg-sig \\\n   && apt-get clean");
    const good = `FROM ubuntu:18.04-slim
RUN apt-get update && apt-get install -y \\
    curl \\
    dpkg-sig \\
 && apt-get clean
`;
    expect(summary(good)).toEqual([]);
  });

  it("004: the maven multi-stage build (no whole-context copy) passes", () => {
    const src = `FROM maven:3.6.3-jdk-11 as build
COPY src /app/src
COPY pom.xml /app
RUN mvn -f /app/pom.xml clean package

FROM openjdk:11-jre-slim as run
COPY --from=build /app/target/*.jar /app.jar
EXPOSE 8080
ENTRYPOINT ["java", "-jar", "/app.jar"]
`;
    expect(summary(src)).toEqual([]);
  });
});

describe("CopyAllBeforeDependencyInstall", () => {
  it("knows the common package managers and their manifests", () => {
    const cases: Array<[string, string]> = [
      ["npm ci", "package-lock.json"],
      ["yarn install --frozen-lockfile", "yarn.lock"],
      ["yarn", "yarn.lock"],
      ["pnpm install", "pnpm-lock.yaml"],
      ["python3 -m pip install -r requirements/prod.txt", "requirements/prod.txt"],
      ["bundle install", "Gemfile.lock"],
      ["go mod download", "go.sum"],
      ["mvn -B dependency:go-offline", "pom.xml"],
      ["./mvnw package -DskipTests", "pom.xml"],
      ["composer install --no-dev", "composer.lock"],
      ["cargo fetch", "Cargo.lock"],
      ["cargo build --release", "Cargo.toml"],
      ["poetry install --no-root", "poetry.lock"],
    ];
    for (const [cmd, manifest] of cases) {
      const f = kiln(`FROM x\nADD . /src\nRUN ${cmd}\n`).filter((x) => x.rule !== "AddInsteadOfCopy");
      expect(f.map((x) => x.rule), cmd).toEqual(["CopyAllBeforeDependencyInstall"]);
      expect(f[0]?.fix, cmd).toContain(manifest);
    }
  });

  it("is not fooled by quotes, other commands or package-specific installs", () => {
    expect(summary('FROM x\nCOPY . .\nRUN echo "npm install && go mod download"\n')).toEqual([]);
    expect(summary("FROM x\nCOPY . .\nRUN npm run build && go build ./... && npm install -g pm2\n")).toEqual([]);
    expect(summary("FROM x\nCOPY . .\nRUN pip install flask\n")).toEqual([]);
    expect(summary("FROM x\nCOPY src/ ./src\nRUN npm ci\n")).toEqual([]);
    expect(summary("FROM x AS b\nFROM x\nCOPY --from=b . .\nRUN npm ci\n")).toEqual([]);
  });

  it("sees installs in exec form, sh -c, heredocs and continued lines", () => {
    expect(summary('FROM x\nCOPY . .\nRUN ["npm", "ci"]\n')).toEqual(["3:CopyAllBeforeDependencyInstall"]);
    expect(summary('FROM x\nCOPY . .\nRUN ["/bin/sh", "-c", "cd /app && npm ci"]\n')).toEqual(["3:CopyAllBeforeDependencyInstall"]);
    expect(summary("FROM x\nCOPY . .\nRUN <<EOF\nset -e\nnpm ci\nEOF\n")).toEqual(["3:CopyAllBeforeDependencyInstall"]);
    expect(summary("FROM x\nCOPY . .\nRUN cd /app \\\n && npm \\\n ci\n")).toEqual(["3:CopyAllBeforeDependencyInstall"]);
    // A heredoc written to a file is not a script.
    expect(summary("FROM x\nCOPY . .\nRUN cat <<EOF > /notes\nnpm ci\nEOF\n")).toEqual([]);
  });

  it("leaves the build after a manifest-first install alone", () => {
    const src = "FROM rust\nCOPY Cargo.toml Cargo.lock ./\nRUN cargo fetch\nCOPY . .\nRUN cargo build --release\n";
    expect(summary(src)).toEqual([]);
  });
});

describe("PackageCacheInSeparateLayer", () => {
  it("flags cleaning without installing in the same RUN, for several managers", () => {
    const src = `FROM x
RUN apk add curl
RUN rm -rf /var/cache/apk/*
RUN npm ci
RUN npm cache clean --force
RUN pip install flask
RUN pip cache purge
RUN yum install -y git && echo ok
RUN yum clean all
`;
    expect(summary(src)).toEqual([
      "3:PackageCacheInSeparateLayer",
      "5:PackageCacheInSeparateLayer",
      "7:PackageCacheInSeparateLayer",
      "9:PackageCacheInSeparateLayer",
    ]);
  });

  it("accepts cleaning in the installing RUN", () => {
    const src = `FROM x
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*
RUN apk add --no-cache git
RUN npm ci && npm cache clean --force
`;
    expect(summary(src)).toEqual([]);
  });

  it("flags a cleanup even when the install came from the base image", () => {
    const f = kiln("FROM debian\nRUN rm -rf /var/lib/apt/lists/*\n");
    expect(f.map((x) => x.rule)).toEqual(["PackageCacheInSeparateLayer"]);
    expect(f[0]?.fix).toContain("append `&& rm -rf /var/lib/apt/lists/*`");
  });
});

describe("AptGetUpdateAlone", () => {
  it("flags an update without an install, not one with it", () => {
    expect(summary("FROM debian\nRUN apt-get update\n")).toEqual(["2:AptGetUpdateAlone"]);
    expect(summary('FROM debian\nRUN ["sh", "-c", "apt-get -q update"]\n')).toEqual(["2:AptGetUpdateAlone"]);
    expect(summary("FROM debian\nRUN apt-get update && apt-get -y --no-install-recommends install curl\n")).toEqual([]);
    expect(summary("FROM debian\nRUN apt update && apt upgrade -y\n")).toEqual([]);
    expect(summary("FROM debian\nRUN echo 'apt-get update'\n")).toEqual([]);
    expect(summary("FROM debian\nRUN <<EOF\napt-get update\napt-get install -y curl\nEOF\n")).toEqual([]);
  });
});

describe("AddInsteadOfCopy", () => {
  it("flags ADD of local non-archives only", () => {
    const f = kiln("FROM x\nADD --chown=1:1 app.py config/ /app/\n");
    expect(f.map((x) => x.rule)).toEqual(["AddInsteadOfCopy"]);
    expect(f[0]?.fix).toBe("Use COPY --chown=1:1 app.py config/ /app/");
    const fine = [
      "ADD rootfs.tar.gz /",
      "ADD vendor.tgz /opt/",
      "ADD https://example.com/tool /usr/bin/tool",
      "ADD git@github.com:moby/buildkit.git /src",
      "ADD --checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000 https://example.com/a /a",
      "ADD $ARCHIVE /",
      "ARG ARCHIVE=dist.tar.xz\nADD $ARCHIVE /",
    ];
    for (const line of fine) expect(summary(`FROM x\n${line}\n`), line).toEqual([]);
    expect(summary("FROM x\nARG SRC=app.py\nADD $SRC /app/\n")).toEqual(["3:AddInsteadOfCopy"]);
    expect(summary("FROM x\nADD <<EOF /etc/motd\nhello\nEOF\n")).toEqual(["2:AddInsteadOfCopy"]);
  });
});
