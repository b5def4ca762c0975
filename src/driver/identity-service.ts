import { packageVersion } from '../package-info.js';
import type { GetPluginCapabilitiesResponse, GetPluginInfoResponse, ProbeResponse } from './csi-types.js';

/** The CSI Identity service. `ready` flips once the node service can serve publishes. */
export class IdentityService {
  private ready = false;

  constructor(private readonly driverName: string) {}

  markReady(): void {
    this.ready = true;
  }

  isReady(): boolean {
    return this.ready;
  }

  async getPluginInfo(): Promise<GetPluginInfoResponse> {
    return { name: this.driverName, vendorVersion: packageVersion };
  }

  async getPluginCapabilities(): Promise<GetPluginCapabilitiesResponse> {
    // A node-only plugin: no CONTROLLER_SERVICE, no topology constraints.
    return { capabilities: [] };
  }

  async probe(): Promise<ProbeResponse> {
    return { ready: { value: this.ready } };
  }
}
