// The smallest forked child: says it is ready, answers one message, and leaves. A reference for
// what forking a Node process costs here.
process.on("message", (message) => {
	process.send?.(message, () => process.disconnect());
});
process.send?.("ready");
