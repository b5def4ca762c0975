/**
 * `*` matches any run of characters, `?` one; everything else literally.
 *
 * Matched with the two-pointer wildcard algorithm (at most pattern × value steps), never a RegExp:
 * the glob is a tenant's text (the `podvault.dev/allowed-objects` annotation of a binding), and
 * `*a*a*a*a*a*b` compiled to `^.*a.*a.*a.*a.*a.*b$` backtracked for 37 s against a 127-character
 * object name on the serving thread, stalling every publish on the node.
 */
export function globMatch(glob: string, value: string): boolean {
  let g = 0;
  let v = 0;
  let star = -1; // position in glob after the last `*`
  let mark = 0; // position in value where that `*` began matching
  while (v < value.length) {
    if (g < glob.length && (glob[g] === '?' || (glob[g] !== '*' && glob[g] === value[v]))) {
      g++;
      v++;
    } else if (g < glob.length && glob[g] === '*') {
      star = ++g;
      mark = v;
    } else if (star !== -1) {
      g = star;
      v = ++mark;
    } else {
      return false;
    }
  }
  while (g < glob.length && glob[g] === '*') g++;
  return g === glob.length;
}
