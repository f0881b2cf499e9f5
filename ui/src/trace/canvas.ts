/** Sizes `element` for the screen's pixel ratio at its laid-out width and `height` CSS
 * pixels, and returns its 2D context scaled so drawing uses CSS pixels, with that width. */
export function sizedContext(
  element: HTMLCanvasElement,
  height: number,
): { context: CanvasRenderingContext2D; width: number } {
  const ratio = window.devicePixelRatio || 1;
  const width = element.clientWidth;
  element.width = width * ratio;
  element.height = height * ratio;
  const context = element.getContext('2d')!;
  context.scale(ratio, ratio);
  return { context, width };
}
