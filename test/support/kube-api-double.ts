// The double lives in src/devvault/ so the bench (compiled by tsconfig.build.json) can start it too.
export { KubeApiDouble } from '../../src/devvault/kube-api-double.js';
export type { KubeObject } from '../../src/devvault/kube-api-double.js';
