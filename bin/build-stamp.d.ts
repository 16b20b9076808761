/** Why dist/ under `root` is not current (missing stamp, or the first newer source file); undefined when it is. */
export declare function staleBuildReason(root: string): string | undefined;
