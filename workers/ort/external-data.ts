/**
 * Which external data files an ONNX graph names (`model.onnx_data`, `model.onnx_data_1`…):
 * the `location` of every initializer stored outside the .onnx, in the main graph and in
 * subgraphs (a merged decoder's If branches). Decoded with onnx-proto (protobufjs), the library
 * the lab builds its graphs with; a graph that does not decode names none (onnxruntime-web then
 * says what is wrong with it).
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

type Graph = InstanceType<typeof onnx.GraphProto>;

export function externalDataLocations(model: Uint8Array): string[] {
  let decoded: InstanceType<typeof onnx.ModelProto>;
  try {
    decoded = onnx.ModelProto.decode(model);
  } catch {
    return [];
  }
  const found = new Set<string>();
  const visit = (graph: Graph | null | undefined) => {
    if (!graph) return;
    for (const t of graph.initializer ?? []) {
      if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
      const location = t.externalData?.find((e) => e.key === 'location')?.value;
      if (location) found.add(location);
    }
    for (const node of graph.node ?? []) {
      for (const a of node.attribute ?? []) {
        visit(a.g as Graph | null);
        for (const g of a.graphs ?? []) visit(g as Graph);
      }
    }
  };
  visit(decoded.graph as Graph);
  return [...found];
}
