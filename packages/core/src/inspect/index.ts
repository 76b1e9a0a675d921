// Looking inside images: `history`, `inspect` and `analyze`, over any image source.
export { InspectError, ImageNotFoundError, InvalidImageError, UnsupportedSourceError, LayerDiffIdMismatchError } from "./errors.js";
export type { OpenedImage, ImageSourceKind } from "./image-source.js";
export { openImage, parseImageSpec, type OpenImageOptions, type ImageSpec } from "./open-image.js";
export { DirTree, TarTree, type FileTree } from "./file-tree.js";
export { scanLayer, entryDiskSize, type LayerFigures, type ScanLayerOptions } from "./layer-scan.js";
export { layerFigures, imageLayerFigures, type LayerFiguresOptions } from "./layer-sizes.js";
export { historyCommand, imageHistory, historyRows, renderHistory, formatHistoryRow, type HistoryRow, type HistoryCommandOptions, type FormattedHistoryRow } from "./history.js";
export { inspectCommand, inspectImage, inspectDocument, dockerContainerConfig, type InspectOptions } from "./inspect.js";
export {
  analyzeCommand,
  analyzeImage,
  analyzeOpenedImage,
  renderAnalysis,
  type AnalyzeOptions,
  type AnalyzeReport,
  type LayerAnalysis,
  type ChangeCount,
  type FileFigure,
  type WastedPath,
} from "./analyze.js";
export { humanSize, humanDuration, ellipsis, formatGoG } from "./units.js";
