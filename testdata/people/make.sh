#!/bin/sh
# Builds the evaluation fixtures for face detection from photos of four real
# people that ship in Debian packages and that the tuned fixtures
# (media/vision/testdata, skimage's astronaut) do not contain. See README.md
# for the sources and licences, and segments.json for the layout.
#
#   sh testdata/people/make.sh [OUT]      (OUT defaults to testdata/people/out)
#
# For each person P it writes into OUT:
#   P.mjpeg      320x240, 30 fps, the PC webcam (Chromium's fake camera)
#   P.ivf        640x480 VP8, the same sequence for the server
#   P-phone.ivf  640x480 VP8, the phone's view from aside: the person small on
#                a desk (empty desk for "none", two people for "two")
#   P-pc320.ivf, P-pc240.ivf, P-phone240.ivf
#                the same smaller and at a lower bit rate: what the server
#                gets when the browser sends less
#   P/*.png      one still per segment kind and view (what the videos show)
# and OUT/segments.json (a copy of the committed one, checked against it).
# ONLY="hopper smile" makes only those people (while working on the script).
#
# Each frame carries a 32x32 marker in its top-left corner whose colour names
# the segment's kind. Needs apt-get and dpkg-deb (or DEBS=dir holding the two
# .deb files), ImageMagick's convert and ffmpeg with libvpx.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/out}
mkdir -p "$out"
out=$(cd "$out" && pwd)
case $out in *[[:space:]]*)
	echo "make.sh: $out: a directory without blanks, please" >&2
	exit 1
	;;
esac

# The stand-in some machines put first on PATH is not ImageMagick.
if [ -x /usr/bin/convert ]; then IM=/usr/bin/convert; else IM=convert; fi
"$IM" -version 2>/dev/null | grep -q ImageMagick || {
	echo "make.sh: needs ImageMagick: apt-get install imagemagick" >&2
	exit 1
}
ffmpeg -hide_banner -encoders 2>/dev/null | grep -q libvpx || {
	echo "make.sh: needs ffmpeg with libvpx: apt-get install ffmpeg" >&2
	exit 1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- The layout (keep in step with segments.json) ---------------------------
seconds=8
kinds="clean none clean two clean covered_hand clean covered_paper clean covered_cup clean turned clean"
people="hopper glasses goatee smile"
marker() {
	case $1 in
	clean) echo '#00ff00' ;;
	none) echo '#ff0000' ;;
	two) echo '#0000ff' ;;
	covered_hand) echo '#ff00ff' ;;
	covered_paper) echo '#ff8000' ;;
	covered_cup) echo '#00ffff' ;;
	turned) echo '#ffff00' ;;
	esac
}

# Who appears beside whom in "two".
partner() {
	case $1 in
	hopper) echo glasses ;;
	glasses) echo goatee ;;
	goatee) echo smile ;;
	smile) echo hopper ;;
	esac
}

# The layout as data for the tests; the committed copy must say the same.
{
	printf '{\n  "segment_seconds": %s,\n  "fps": 30,\n  "keyframe_interval": 15,\n' $seconds
	printf '  "kinds": ['
	sep=
	for k in $kinds; do printf '%s"%s"' "$sep" $k; sep=', '; done
	printf '],\n  "markers": {'
	sep=
	for k in clean none two covered_hand covered_paper covered_cup turned; do
		printf '%s"%s": "%s"' "$sep" $k "$(marker $k)"
		sep=', '
	done
	printf '},\n  "people": ['
	sep=
	for p in $people; do printf '%s"%s"' "$sep" $p; sep=', '; done
	printf '],\n  "two_with": {'
	sep=
	for p in $people; do printf '%s"%s": "%s"' "$sep" $p "$(partner $p)"; sep=', '; done
	printf '}\n}\n'
} >"$out/segments.json"
if ! cmp -s "$out/segments.json" "$here/segments.json"; then
	echo "make.sh: $here/segments.json differs from the layout written to $out/segments.json; update it" >&2
	exit 1
fi

# --- The photos --------------------------------------------------------------
DEBS=${DEBS:-$out/debs}
mkdir -p "$DEBS"
html=usr/share/doc/opencv-doc/opencv4/html
data=usr/share/doc/opencv-doc/examples/data
mpl=usr/share/matplotlib/mpl-data/sample_data
fetch() { # package, then the files to take from it
	pkg=$1
	shift
	deb=$(ls "$DEBS/${pkg}"_*.deb 2>/dev/null | tail -n 1 || true)
	if [ -z "$deb" ]; then
		(cd "$DEBS" && apt-get download "$pkg" >/dev/null)
		deb=$(ls "$DEBS/${pkg}"_*.deb | tail -n 1)
	fi
	mkdir -p "$tmp/x"
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/x" $(for f; do echo "./$f"; done)
}
fetch python-matplotlib-data $mpl/grace_hopper.jpg
fetch opencv-doc $html/example.jpg $html/230501201_1.jpg $html/227943776_1.jpg \
	$data/aloeL.jpg $data/stuff.jpg
x=$tmp/x
mkdir -p "$tmp/src"
cp "$x/$mpl/grace_hopper.jpg" "$tmp/src/hopper.png"
# example.jpg is three views of one face side by side: take the first.
"$IM" "$x/$html/example.jpg" -crop 376x580+0+0 +repage "$tmp/src/glasses.png"
cp "$x/$html/230501201_1.jpg" "$tmp/src/goatee.png"
cp "$x/$html/227943776_1.jpg" "$tmp/src/smile.png"

# Landmarks in each photo, read by eye: the eyes' centres, the mouth's centre
# and the chin's lowest point (x y each).
marks() {
	case $1 in
	hopper) echo 220 190 305 188 257 277 325 ;;
	glasses) echo 123 287 263 288 193 437 533 ;;
	goatee) echo 237 362 363 358 303 487 580 ;;
	smile) echo 172 165 236 167 208 238 283 ;;
	esac
}
calc() { awk "BEGIN { printf \"%.0f\", $1 }"; }

# place P W H OX OY D OUT: P's photo in a WxH picture, scaled (not stretched)
# so that eyes to mouth measures D pixels, the eyes' midpoint at OX,OY; where
# the photo ends, its edges are stretched out and blurred, as an out-of-focus
# room.
place() {
	# Positional parameters only: sh functions share their variables.
	set -- "$@" $(marks "$1")
	set -- "$@" "$(calc "($8+${10})/2")" "$(calc "($9+${11})/2")"
	set -- "$@" "$(awk "BEGIN { printf \"%.4f\", $6/(${13}-${16}) }")"
	"$IM" -define distort:viewport=${2}x$3+0+0 \
		\( "$tmp/src/$1.png" -virtual-pixel edge -distort SRT "${15},${16} ${17} 0 $4,$5" -blur 0x12 \) \
		\( "$tmp/src/$1.png" -alpha set -virtual-pixel transparent -distort SRT "${15},${16} ${17} 0 $4,$5" \) \
		-composite +repage -alpha off "$7"
}

# feature P NAME: where a landmark of P lands in the PC view ("place P 640 480
# 320 190 80"): ex1 ey1 ex2 ey2 mx my chin as x y pairs, from the marks.
D=80 OX=320 OY=190
feature() {
	set -- $(marks "$1")
	cx=$(awk "BEGIN { print ($1+$3)/2 }")
	cy=$(awk "BEGIN { print ($2+$4)/2 }")
	s=$(awk "BEGIN { print $D/($6-$cy) }")
	awk "BEGIN { printf \"%.0f %.0f %.0f %.0f %.0f %.0f %.0f\n\", \
		$OX+($1-$cx)*$s, $OY+($2-$cy)*$s, $OX+($3-$cx)*$s, $OY+($4-$cy)*$s, \
		$OX+($5-$cx)*$s, $OY+($6-$cy)*$s, $OY+($7-$cy)*$s }"
}

# cutout IN HEIGHT OUT: the person's part of a PC view, scaled, edges faded.
cutout() {
	"$IM" "$1" -crop 300x440+170+40 +repage -resize x"$2" -alpha set -background none -vignette 0x6+2+2 "$3"
}

mark() { # IN KIND OUT
	"$IM" "$1" -fill "$(marker "$2")" -draw 'rectangle 0,0 31,31' "$3"
}

frames=$((30 * seconds * $(echo $kinds | wc -w)))
# vp8 INPUT SIZE BITRATE OUT: a camera's VP8 as the server receives it, with
# a key frame every 15 frames (0.5 s), so that every segment has 16.
vp8() {
	# $1 is ffmpeg's input options, split on purpose (the paths hold no blanks).
	ffmpeg -v error -y $1 -vf "fps=30,scale=$2,format=yuv420p" -frames:v $frames \
		-c:v libvpx -deadline realtime -cpu-used 8 -b:v "$3" -g 15 -keyint_min 15 -auto-alt-ref 0 -lag-in-frames 0 -f ivf "$4"
}

# --- The stills ----------------------------------------------------------------
"$IM" "$x/$data/aloeL.jpg" -resize 640x480^ -gravity center -extent 640x480 +repage "$tmp/room.png"
"$IM" "$x/$data/stuff.jpg" -resize 640x480^ -gravity center -extent 640x480 +repage "$tmp/desk.png"

for p in ${ONLY:-$people}; do
	dir=$tmp/$p
	mkdir -p "$dir"
	place "$p" 640 480 $OX $OY $D "$dir/clean.png"
	set -- $(feature "$p")
	ex1=$1 ey1=$2 ex2=$3 ey2=$4 mx=$5 my=$6 chin=$7
	e=$((ex2 - ex1))
	ecx=$(((ex1 + ex2) / 2)) ecy=$(((ey1 + ey2) / 2))
	# The person's own skin tone, from the cheek below the left eye.
	skin=$("$IM" "$dir/clean.png" -crop 8x8+$((ex1 - 4))+$(((ey1 + my) / 2)) -resize '1x1!' -format '%[pixel:p{0,0}]' info:)

	cp "$tmp/room.png" "$dir/none.png"

	# Two people side by side, each smaller than alone.
	q=$(partner "$p")
	place "$p" 320 480 160 200 56 "$tmp/a.png"
	place "$q" 320 480 160 200 56 "$tmp/b.png"
	"$IM" "$tmp/a.png" "$tmp/b.png" +append "$dir/two.png"

	# A hand over mouth and chin, coming from the right: four fingers
	# across the mouth, the palm, the thumb under the chin, the forearm.
	hy=$((my + 8)) # the hand sits a little below the mouth, under the nose
	"$IM" -size 640x480 xc:none -fill "$skin" -stroke "$("$IM" xc:"$skin" -modulate 75 -format '%[pixel:p{0,0}]' info:)" -strokewidth 1.5 \
		-draw "polygon $((mx + 40)),$((hy + 50)) $((mx + 100)),$((hy + 20)) $((mx + 175)),480 $((mx + 85)),480" \
		-draw "roundrectangle $((mx + 10)),$((hy - 36)) $((mx + 100)),$((hy + 64)) 26,26" \
		-draw "roundrectangle $((mx - 68)),$((hy - 34)) $((mx + 40)),$((hy - 12)) 11,11" \
		-draw "roundrectangle $((mx - 80)),$((hy - 11)) $((mx + 40)),$((hy + 11)) 11,11" \
		-draw "roundrectangle $((mx - 74)),$((hy + 12)) $((mx + 40)),$((hy + 34)) 11,11" \
		-draw "roundrectangle $((mx - 58)),$((hy + 35)) $((mx + 40)),$((hy + 55)) 10,10" \
		-draw "translate $((mx + 20)),$((hy + 66)) rotate -20 ellipse 0,0 46,14 0,360" \
		-blur 0x1 "$tmp/hand.png"
	"$IM" "$dir/clean.png" "$tmp/hand.png" -composite "$dir/covered_hand.png"

	# A sheet of paper held over the lower half of the face, a little
	# askew, with lines of print.
	top=$(((ecy + my) / 2))
	l=$((mx - 120)) r=$((mx + 118))
	lines=""
	for i in 1 2 3 4 5 6 7; do
		y=$((top + 14 + i * 16))
		lines="$lines line $((l + 18)),$((y + 3)) $((r - 24 - (i % 3) * 30)),$((y - 3))"
	done
	"$IM" "$dir/clean.png" -fill '#ecebe6' -stroke '#a9a9a4' -strokewidth 2 \
		-draw "polygon $l,$((top + 6)) $r,$((top - 6)) $((r + 14)),480 $((l + 10)),480" \
		-stroke '#9a9a9a' -strokewidth 3 -draw "$lines" "$dir/covered_paper.png"

	# A mug raised to the mouth: body, rim, handle, a highlight.
	t=$((my - 30)) b=$((my + 105))
	"$IM" "$dir/clean.png" -stroke '#6e2218' -strokewidth 2 \
		-fill none -strokewidth 14 -draw "ellipse $((mx + 62)),$((t + 62)) 24,32 0,360" \
		-strokewidth 2 -fill '#a8392a' \
		-draw "polygon $((mx - 58)),$t $((mx + 58)),$t $((mx + 50)),$b $((mx - 50)),$b" \
		-draw "ellipse $mx,$b 50,9 0,180" \
		-fill '#3b1a12' -draw "ellipse $mx,$t 58,11 0,360" \
		-stroke none -fill '#c96a5a' -draw "polygon $((mx - 44)),$((t + 16)) $((mx - 32)),$((t + 16)) $((mx - 28)),$((b - 10)) $((mx - 38)),$((b - 10))" \
		"$dir/covered_cup.png"

	# The head turned about 40 degrees to its left: eyes, nose and mouth
	# moved towards one cheek, the far eye foreshortened, the outline kept.
	# (Shifts of 0.55-0.70 eye distances read only 23-33 degrees on the
	# page's yaw estimates, under the rules' 30: these are larger.)
	nose=$(calc "$ecy + 0.6*($my-$ecy)")
	h=$(calc "1.05*$e")
	far=$(calc "1.6*$e") # the far side's outline gives way, so the far eye does not fold
	"$IM" "$dir/clean.png" -distort Shepards "$(
		printf '%s ' \
			"$ex1,$ey1 $(calc "$ex1+0.75*$e"),$ey1" \
			"$ex2,$ey2 $(calc "$ex2+0.55*$e"),$ey2" \
			"$ecx,$nose $(calc "$ecx+0.95*$e"),$nose" \
			"$mx,$my $(calc "$mx+0.75*$e"),$my" \
			"$mx,$chin $(calc "$mx+0.5*$e"),$chin" \
			"$((ecx - h)),$((ecy - 40)) $((ecx - h)),$((ecy - 40))" \
			"$((ecx + far)),$((ecy - 40)) $((ecx + far)),$((ecy - 40))" \
			"$((ecx - h)),$nose $((ecx - h)),$nose" \
			"$((ecx + far)),$nose $((ecx + far)),$nose" \
			"$((mx - e)),$chin $((mx - e)),$chin" \
			"$((mx + e)),$chin $((mx + e)),$chin" \
			"$ecx,$((ecy - 110)) $ecx,$((ecy - 110))" \
			"0,0 0,0 639,0 639,0 0,479 0,479 639,479 639,479"
	)" "$dir/turned.png"

	# The phone's view from aside: the person, head and shoulders a third of
	# the frame high, beyond a desk; two people a little smaller each.
	for k in clean covered_hand covered_paper covered_cup turned; do
		cutout "$dir/$k.png" 160 "$tmp/cut.png"
		"$IM" "$tmp/desk.png" "$tmp/cut.png" -geometry +415+60 -composite "$dir/$k-phone.png"
	done
	cp "$tmp/desk.png" "$dir/none-phone.png"
	cutout "$dir/clean.png" 136 "$tmp/cut.png"
	place "$q" 640 480 $OX $OY $D "$tmp/qclean.png"
	cutout "$tmp/qclean.png" 136 "$tmp/cut2.png"
	"$IM" "$tmp/desk.png" "$tmp/cut.png" -geometry +340+70 -composite "$tmp/cut2.png" -geometry +440+70 -composite "$dir/two-phone.png"

	# The sequences.
	mkdir -p "$out/$p"
	for k in clean none two covered_hand covered_paper covered_cup turned; do
		mark "$dir/$k.png" $k "$out/$p/$k.png"
		mark "$dir/$k-phone.png" $k "$out/$p/$k-phone.png"
	done
	for v in "" -phone; do
		: >"$tmp/list$v.txt"
		for k in $kinds; do
			printf "file '%s'\nduration %s\n" "$out/$p/$k$v.png" $seconds >>"$tmp/list$v.txt"
		done
		printf "file '%s'\n" "$out/$p/$k$v.png" >>"$tmp/list$v.txt"
	done
	seq="-f concat -safe 0 -i $tmp/list.txt"
	phone="-f concat -safe 0 -i $tmp/list-phone.txt"
	vp8 "$seq" 640x480 900k "$out/$p.ivf"
	vp8 "$phone" 640x480 900k "$out/$p-phone.ivf"
	ffmpeg -v error -y $seq -vf fps=30,scale=320:240 -frames:v $frames \
		-pix_fmt yuvj420p -c:v mjpeg -q:v 20 -f mjpeg "$out/$p.mjpeg"
	# What the server gets when the browser sends less: the PC camera as
	# Chromium's fake camera plays P.mjpeg (320x240) at the page's default
	# cap of 300 kbit/s; the PC camera and the phone at 240x180 and 150
	# kbit/s, where WebRTC goes when the CPU or the network cannot keep up.
	vp8 "-framerate 30 -f mjpeg -i $out/$p.mjpeg" 320x240 300k "$out/$p-pc320.ivf"
	vp8 "$seq" 240x180 150k "$out/$p-pc240.ivf"
	vp8 "$phone" 240x180 150k "$out/$p-phone240.ivf"
	echo "make.sh: $p done"
done

ls -l "$out"
