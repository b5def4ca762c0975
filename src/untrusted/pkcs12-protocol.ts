/** Messages between the driver and its PKCS#12 worker thread (structured-clone data only). */
export interface Pkcs12Job {
  id: number;
  pfx: Uint8Array<ArrayBuffer>;
  password: string;
  maxIterations: number;
  /** Order the certificates leaf → root (`--construct-pem-chain`); false: the bundle's order. */
  orderChain: boolean;
}

export type Pkcs12Answer =
  | { id: number; ok: true; pem: string }
  /** `refusal`: why the bundle was refused, written by podvault; absent: it did not open. */
  | { id: number; ok: false; refusal?: string };
