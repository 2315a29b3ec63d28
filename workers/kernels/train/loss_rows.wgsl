// The per-row loss kernels' shared exit (loss_grad.wgsl, distill_loss.wgsl): a row of weight 0
// (padding, a prompt position) has a zero gradient and zero statistics. Each kernel declares
// WG, dlogits (its [rows, V] gradient) and stats (4 per row); statsRow is the row's index there.
fn zeroLossRow(base: u32, V: u32, statsRow: u32, lid: u32) {
  for (var v = lid; v < V; v = v + WG) {
    dlogits[base + v] = 0.0;
  }
  if (lid == 0u) {
    for (var f = 0u; f < 4u; f = f + 1u) {
      stats[statsRow * 4u + f] = 0.0;
    }
  }
}
