/** Who the kubelet says the pod is: from the `csi.storage.k8s.io/*` volume context keys. */
export interface PodInfo {
  namespace: string;
  name: string;
  uid: string;
  serviceAccount: string;
}

/** `namespace/name`, the way users and `kubectl` name a pod. */
export function podRef(pod: PodInfo): string {
  return `${pod.namespace}/${pod.name}`;
}
