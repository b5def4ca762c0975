# podvault driver image: Node 20, the built CLI, production dependencies only.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# python3, make and g++ build podvault's mount(2) addon (native/) against this Node's own headers.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
RUN npm ci --ignore-scripts
COPY . .
RUN npm run build:native && npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
# The driver mounts through its own addon; mount/umount (util-linux, in the base image) are the fallback.
WORKDIR /opt/podvault
COPY --from=build /src/package.json /src/package-lock.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/native/build/Release/podvault_mount.node ./native/build/Release/podvault_mount.node
COPY --from=build /src/bin ./bin
COPY --from=build /src/proto ./proto
COPY --from=build /src/examples ./examples
COPY --from=build /src/deploy/flexvolume ./deploy/flexvolume
# The FlexVolume exec script runs on the host with this node binary (see deploy/flexvolume).
RUN cp "$(command -v node)" /opt/podvault/node
ENTRYPOINT ["node", "/opt/podvault/bin/podvault.js"]
CMD ["driver", "--help"]
